"""flightsync: keep a SQL database of flights in step with flight-data providers."""
__version__ = "0.1.0"
