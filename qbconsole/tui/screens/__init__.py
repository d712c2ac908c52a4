"""Section screens of the console."""
