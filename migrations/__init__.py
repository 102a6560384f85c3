"""Alembic migrations of the flightsync database, installed as ``flightsync.migrations``
(see pyproject.toml) so ``flightsync migrate`` finds them without an alembic.ini."""
