"""flightsync.store: the SQL database (tables, Alembic migrations, sessions).

    Database.open(url, *, create_default=False) -> Database
    Database.check_schema(); .session(); .engine; .url_display; .dialect; .close()
    migrate.upgrade(url, rev="head"), downgrade(url, rev), current(url), heads(), history(url=None)
"""

from types import ModuleType

from flightsync.store._db import Database
from flightsync.store._types import UTCDateTime
from flightsync.store.tables import (
    ALL_TABLES,
    Conflict,
    Flight,
    FlightChange,
    SourceObservation,
    SyncRun,
    WebhookEvent,
)

__all__ = [
    "ALL_TABLES",
    "Conflict",
    "Database",
    "Flight",
    "FlightChange",
    "SourceObservation",
    "SyncRun",
    "UTCDateTime",
    "WebhookEvent",
    "migrate",
]


def __getattr__(name: str) -> ModuleType:
    # ``migrate`` pulls in Alembic (~0.3 s): loaded on first use, not with the package.
    if name == "migrate":
        import flightsync.store.migrate as module  # noqa: PLC0415

        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
