"""flightsync.policy."""
