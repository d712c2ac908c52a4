"""A/B experiments: assignment, tracking and statistics."""
