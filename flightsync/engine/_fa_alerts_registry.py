"""FlightAware alerts for tracked flights (`flightsync alerts`, README "FlightAware alerts"):
register one per tracked flight that lacks one, list and remove them, and retire those whose
flight `batch --due` no longer refreshes.

Each alert is recorded in its own transaction right after AeroAPI created it, so a run killed
midway keeps what it registered. One that AeroAPI created but the run could not record (killed
between the two) is found again on the next run by ``GET /alerts`` (same ident, date and
delivery URL) and recorded instead of created twice: registering is idempotent.

Functions take the collaborators they need (the database, the settings, the providers).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from flightsync.config import Settings
from flightsync.errors import (
    ConfigError,
    InputError,
    ProviderAuthError,
    ProviderError,
    ProviderRequestRejected,
)
from flightsync.models import FlightQuery, to_json_value
from flightsync.providers import ProviderSet, call_deadline_seconds, provider_deadline
from flightsync.store import Database
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.providers.flightaware_alerts import AlertClient, RemoteAlert
    from flightsync.store._columns import FlightKey

log = structlog.get_logger(__name__)

_PROVIDER = "flightaware"
# The token is the receiver's only proof that a delivery comes from AeroAPI (AeroAPI signs
# nothing): long and URL-safe, so it cannot be guessed and needs no escaping.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
# Flights dated before yesterday (UTC) are over: AeroAPI refuses a start before today.
_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class AlertDesk:
    """What alert management needs: the database, the settings and the providers."""

    database: Database
    settings: Settings
    providers: ProviderSet

    def client(self) -> AlertClient:
        from flightsync.providers.flightaware_alerts import AlertClient  # noqa: PLC0415

        if _PROVIDER not in self.providers.adapters:
            why = self.providers.skipped.get(_PROVIDER, "set FLIGHTAWARE_API_KEY")
            raise ConfigError(f"flightaware alerts need the flightaware provider: {why}")
        key = self.settings.providers[_PROVIDER].credentials["api_key"]
        return AlertClient(self.providers.client(_PROVIDER), key)

    def target(self) -> tuple[str, str]:
        """The delivery URL and its masked form; ConfigError (exit 2) saying what is missing."""
        from flightsync.providers.flightaware_alerts import mask_url, target_url  # noqa: PLC0415

        public = self.settings.flightaware_alerts.public_url
        if not public:
            raise ConfigError("flightaware_alerts.public_url is not set: the URL where AeroAPI "
                              "reaches `flightsync serve` (see README, \"FlightAware alerts\")",
                              key="flightaware_alerts.public_url")
        token = self.settings.flightaware_alert_token
        if not token:
            raise ConfigError("FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN is not set: the secret path "
                              "segment AeroAPI's deliveries carry")
        if not _TOKEN.fullmatch(token):
            raise ConfigError("FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN must be 16 to 128 letters, "
                              "digits, '-' or '_' (e.g. from `openssl rand -hex 24`)")
        url = target_url(public, token)
        return url, mask_url(url) or ""

    def deadline(self) -> AbstractContextManager[None]:
        return provider_deadline(time.monotonic() + call_deadline_seconds(self.settings))


def register(desk: AlertDesk, query: FlightQuery | None = None, *,
             now: datetime | None = None) -> dict[str, Any]:
    """An alert for ``query`` (which must be a stored, tracked flight), or for every tracked
    flight from yesterday on that lacks one. Flights that have one are left alone."""
    now = now or datetime.now(UTC)
    with desk.database.session() as session:
        if query is None:
            todo = repo.tracked_without_alert(session, since=now.date() - _LOOKBACK)
            existing = len(repo.alerted_keys(session))
        else:
            todo, existing = _one(session, query)
    result: dict[str, Any] = {"created": [], "existing": existing, "failed": []}
    if not todo:
        return result
    url, masked = desk.target()
    client = desk.client()
    events = desk.settings.flightaware_alerts.events
    with _auth_is_config():
        if desk.settings.flightaware_alerts.set_account_endpoint:
            with desk.deadline():
                client.set_endpoint(url)
        with desk.deadline():
            remote = _ours(client.list(), url)
        for key in todo:
            result_row = _register_one(desk, client, key, url=url, masked=masked,
                                       events=events, remote=remote, now=now)
            result["created" if "alert_id" in result_row else "failed"].append(result_row)
    return result


def _one(session: Any, query: FlightQuery) -> tuple[list[FlightKey], int]:
    key = repo.key_of(query)
    tracking = repo.tracking_of(session, key)
    if tracking is None:
        raise InputError(f"{query.designator} on {query.departure_date.isoformat()} is not "
                         "stored: sync it first", code="flight_not_stored")
    if not tracking["tracked"]:
        raise InputError(f"{query.designator} on {query.departure_date.isoformat()} is not "
                         "tracked: `flightsync flights track` it first", code="not_tracked")
    if key in repo.alerted_keys(session):
        return [], 1
    return [key], 0


def _register_one(desk: AlertDesk, client: AlertClient, key: FlightKey, *, url: str,
                  masked: str, events: Sequence[str], remote: dict[tuple[str, str], int],
                  now: datetime) -> dict[str, Any]:
    from flightsync.providers.flightaware_alerts import AlertSpec  # noqa: PLC0415

    carrier, number, suffix, day = key
    flight = f"{carrier}{number}{suffix}"
    if suffix:  # AeroAPI idents carry no operational suffix (docs/PROVIDERS.md 6.1)
        return {"flight": flight, "date": day.isoformat(), "error": {
            "code": "invalid_flight", "message": "FlightAware idents carry no operational "
            "suffix: no alert for a suffixed flight"}}
    ident = f"{carrier}{number}"
    adopted = remote.get((ident, day.isoformat()))
    try:
        if adopted is None:
            with desk.deadline():
                alert_id = client.create(AlertSpec(
                    ident=ident, day=day, events=tuple(events), target_url=url,
                    description=f"flightsync {ident} {day.isoformat()}"))
        else:
            alert_id = adopted
    except ProviderRequestRejected as exc:  # this flight only (AeroAPI's detail says why)
        return {"flight": flight, "date": day.isoformat(),
                "error": {"code": exc.code, "message": exc.message}}
    with desk.database.session() as session:
        repo.add_alert(session, key, alert_id=alert_id, ident=ident, events=events,
                       endpoint=masked, now=now)
    log.info("flightaware.alert.registered", alert_id=alert_id, flight=flight,
             date=day.isoformat(), adopted=adopted is not None)
    return {"alert_id": alert_id, "flight": flight, "date": day.isoformat(),
            "events": list(events), "endpoint": masked, "status": "active",
            "created_at": to_json_value(now), "removed_at": None,
            "adopted": adopted is not None}


def _ours(alerts: Iterable[RemoteAlert], url: str) -> dict[tuple[str, str], int]:
    """AeroAPI's live alerts that deliver to ``url``, by (ident, start date)."""
    return {(a.ident, a.start): a.alert_id for a in alerts
            if a.enabled and a.target_url == url and a.ident and a.start}


def list_alerts(database: Database, *, include_removed: bool = False) -> dict[str, Any]:
    """`alerts list`: the recorded alerts (live ones unless ``include_removed``)."""
    with database.session() as session:
        rows = repo.list_alerts(session, include_removed=include_removed)
    alerts = [_json(row) for row in rows]
    return {"alerts": alerts, "live": sum(a["status"] == "active" for a in alerts)}


def remove(desk: AlertDesk, alert_id: int | None = None, *,
           now: datetime | None = None) -> dict[str, Any]:
    """`alerts remove`: delete one live alert (``alert_id``) or every live one at AeroAPI and
    mark it removed. An id flightsync never recorded, or one already removed, is exit 2."""
    now = now or datetime.now(UTC)
    with desk.database.session() as session:
        if alert_id is None:
            ids = [row["alert_id"] for row in repo.list_alerts(session, include_removed=False)]
        else:
            row = repo.alert_by_id(session, alert_id)
            if row is None or row["status"] != "active":
                raise InputError(
                    f"no live alert {alert_id}" + ("" if row is None else f" ({row['status']})")
                    + "; see `flightsync alerts list`", code="unknown_alert")
            ids = [alert_id]
    removed = _delete(desk, ids, status="removed", now=now) if ids else []
    return {"removed": removed}


def retire_finished(desk: AlertDesk, *, now: datetime | None = None) -> list[int]:
    """For `batch --due`: remove the live alerts of flights it no longer refreshes (arrived a
    day ago, untracked or deleted). Never fails the run: a failure is logged, and the alert is
    retired by a later run."""
    now = now or datetime.now(UTC)
    with desk.database.session() as session:
        ids = [row["alert_id"] for row in repo.finished_alerts(session)]
    if not ids:
        return []
    if _PROVIDER not in desk.providers.adapters:
        log.warning("flightaware.alerts.finished", alert_ids=ids,
                    reason="flightaware not configured: not removed")
        return []
    try:
        retired = _delete(desk, ids, status="finished", now=now)
    except (ProviderError, ConfigError) as exc:  # a refused key included: never fail the run
        log.warning("flightaware.alerts.retire_failed", error=exc.code, message=exc.message)
        return []
    log.info("flightaware.alerts.retired", alert_ids=retired)
    return retired


def _delete(desk: AlertDesk, ids: Sequence[int], *, status: str,
            now: datetime) -> list[int]:
    client = desk.client()
    done: list[int] = []
    with _auth_is_config():
        for alert_id in ids:
            with desk.deadline():
                known = client.delete(alert_id)
            if not known:
                log.info("flightaware.alert.gone", alert_id=alert_id)
            with desk.database.session() as session:
                repo.close_alert(session, alert_id, status=status, now=now)
            done.append(alert_id)
    return done


@contextmanager
def _auth_is_config() -> Iterator[None]:
    """A refused API key is a secret to fix (README, "Exit codes": exit 2), not an outage."""
    try:
        yield
    except ProviderAuthError as exc:
        raise ConfigError(f"{exc.message}: check FLIGHTAWARE_API_KEY",
                          key="FLIGHTAWARE_API_KEY") from exc


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {"alert_id": row["alert_id"],
            "flight": f"{row['carrier']}{row['flight_number']}{row['suffix']}",
            "date": row["departure_date"].isoformat(), "events": list(row["events"]),
            "endpoint": row["endpoint"], "status": row["status"],
            "created_at": to_json_value(row["created_at"]),
            "removed_at": to_json_value(row["removed_at"])}


__all__ = ["AlertDesk", "list_alerts", "register", "remove", "retire_finished"]
