"""flightsync.store."""
