"""flightsync.providers."""
