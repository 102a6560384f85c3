"""flightsync.engine."""
