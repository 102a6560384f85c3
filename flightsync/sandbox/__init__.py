"""flightsync.sandbox."""
