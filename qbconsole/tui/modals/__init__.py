"""Small dialogs the sections open: acknowledge and silence an alert."""
