"""flightsync.cli."""
