"""selfplay package."""
