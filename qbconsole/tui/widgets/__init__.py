"""Widgets of the console: tiles, charts, the section bar and status line."""
