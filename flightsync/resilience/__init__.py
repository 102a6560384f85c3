"""flightsync.resilience."""
