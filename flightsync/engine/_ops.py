"""Operator views and controls: explain, conflicts, status, providers, breaker and cache."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flightsync.engine import _alerts, _sources
from flightsync.errors import InputError
from flightsync.models import TIME_FIELDS, FlightQuery, FlightStatus, to_json_value
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine


def explain(engine: Engine, query: FlightQuery) -> dict[str, Any]:
    """Per leg and field: the stored value, who gave it, the rule, and what the others said."""
    with engine.database.session() as session:
        legs = repo.load_legs(session, [repo.key_of(query)]).get(repo.key_of(query))
        if not legs:
            raise InputError(f"{query.designator} on {query.departure_date} is not stored; "
                             "sync it first", code="unknown_flight")
        ids = [leg.id for leg in legs]
        observed = repo.observations_for(session, ids)
        changes = repo.latest_changes(session, ids)
        learned = any(change["rule"] == _sources.ACCURACY_RULE
                      for by_field in changes.values() for change in by_field.values())
        trust = _sources.trust_from(repo.source_scores(session)) if learned else None
    out_legs = []
    for leg in legs:
        seen = observed.get(leg.id, {})
        fields = []
        for name, value in leg.values.items():
            change = changes.get(leg.id, {}).get(name)
            others = {src: row["values"].get(name) for src, row in seen.items()
                      if row["values"].get(name) is not None}
            if value is None and not others:
                continue
            entry = {
                "field": name, "value": to_json_value(value),
                "source": change["source"] if change else None,
                "rule": change["rule"] if change else None,
                "observations": others,
            }
            if change and change["rule"] == _sources.ACCURACY_RULE:
                # Recomputed from today's scores: the audit row keeps only the rule's name.
                entry["trust"] = _sources.figures_behind(name, others, trust, engine.policy)
            fields.append(entry)
        out_legs.append({"leg_index": leg.leg_index, "origin": leg.origin,
                         "version": leg.version, "open_conflicts": sorted(leg.open_conflicts),
                         "fields": fields, "rejected": rejected_of(seen)})
    return {"flight": query.designator, "date": query.departure_date.isoformat(),
            "legs": out_legs}


def rejected_of(latest: dict[str, Any]) -> list[dict[str, Any]]:
    """The values each source's latest observation of a leg (``latest``: source -> row) had
    dropped as implausible, by source then field."""
    out = []
    for source, row in sorted(latest.items()):
        found = row["values"].get(repo.REJECTED_KEY)
        for item in found if isinstance(found, list) else ():
            out.append({"source": source, "field": item.get("field"),
                        "value": item.get("value"), "reason": item.get("reason"),
                        "detail": item.get("detail"),
                        "observed_at": to_json_value(row.get("observed_at")),
                        "confirmed_at": to_json_value(row.get("confirmed_at"))})
    return out


def conflicts(engine: Engine, *, include_resolved: bool,
              limit: int | None = None) -> dict[str, Any]:
    """``conflicts list``: up to ``limit`` conflicts in id order (None: all) and ``more``,
    whether more matched."""
    with engine.database.session() as session:
        rows = repo.list_conflicts(session, include_resolved=include_resolved,
                                   limit=None if limit is None else limit + 1)
    more = limit is not None and len(rows) > limit
    return {"conflicts": _conflict_rows(rows[:limit] if more else rows), "more": more}


def _conflict_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{
        "id": row["id"],
        "flight": f"{row['carrier']}{row['flight_number']}{row['suffix']}",
        "date": row["departure_date"].isoformat(), "leg_index": row["leg_index"],
        "origin": row["origin"], "field": row["field"], "values": row["candidates"],
        "status": row["status"], "rule": row["rule"],
        "resolution": json.loads(row["resolution"]) if row["resolution"] else None,
        "resolved_by": row["resolved_by"], "created_at": to_json_value(row["created_at"]),
        "resolved_at": to_json_value(row["resolved_at"]),
    } for row in rows]


def resolve_conflict(engine: Engine, conflict_id: int, *, use_source: str | None,
                     value: str | None) -> dict[str, Any]:
    """Settle an open conflict with one source's value or an operator's value."""
    if (use_source is None) == (value is None):
        raise InputError("give exactly one of --use SOURCE or --value VALUE",
                         code="invalid_resolution")
    now = datetime.now(UTC)
    with engine.database.session() as session:
        row = repo.get_conflict(session, conflict_id)
        if row["status"] != "open":
            raise InputError(f"conflict {conflict_id} is already resolved",
                             code="conflict_resolved")
        column = row["field"]
        if use_source is not None:
            if use_source not in row["candidates"]:
                raise InputError(
                    f"source {use_source!r} gave no value for conflict {conflict_id}; "
                    f"candidates: {', '.join(sorted(row['candidates']))}",
                    code="invalid_resolution")
            chosen = parse_field_value(column, row["candidates"][use_source])
        else:
            chosen = parse_field_value(column, value)
        changed = repo.apply_resolution(session, row, value=chosen, source=use_source,
                                        who=_operator(), run_id=engine.run_id, now=now)
    query = FlightQuery(carrier=row["carrier"], number=row["flight_number"],
                        suffix=row["suffix"], departure_date=row["departure_date"])
    engine.cache.drop(query)
    return {"id": conflict_id, "field": column, "value": to_json_value(chosen),
            "source": use_source, "changed": changed, "flight": query.designator,
            "date": query.departure_date.isoformat()}


def parse_field_value(column: str, raw: Any) -> Any:
    """An operator's or a stored JSON value as the field's domain type."""
    if raw is None:
        return None
    if column in TIME_FIELDS:
        try:
            parsed = datetime.fromisoformat(str(raw))
        except ValueError as exc:
            raise InputError(f"{column}: {raw!r} is not an ISO 8601 time",
                             code="invalid_value") from exc
        if parsed.tzinfo is None:
            raise InputError(f"{column}: {raw!r} needs an offset or Z", code="invalid_value")
        return parsed.astimezone(UTC)
    if column == "status":
        try:
            return FlightStatus(str(raw))
        except ValueError as exc:
            raise InputError(f"status: {raw!r} is not one of "
                             f"{', '.join(s.value for s in FlightStatus)}",
                             code="invalid_value") from exc
    if column == "codeshares":
        items = raw if isinstance(raw, list) else str(raw).split(",")
        return tuple(str(i).strip().upper() for i in items if str(i).strip())
    if column == "operating_flight_number":
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{column}: {raw!r} is not a number",
                             code="invalid_value") from exc
    return str(raw).strip()


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def status(engine: Engine) -> dict[str, Any]:
    """docs/CONTRACTS.md section 3 ``status``."""
    now = engine.clock.now()
    with engine.database.session() as session:
        counts = repo.counts(session, now=now)
        last = repo.last_run(session)
        storage = repo.storage_figures(session)
    breakers = {
        name: {"state": view.state, "failures": view.failures,
               "opened_at": to_json_value(view.opened_at),
               "open_since": to_json_value(view.open_since),
               "next_probe_at": to_json_value(view.next_probe_at)}
        for name, view in engine.breakers.snapshot(list(engine.provider_set.adapters)).items()
    }
    tokens = {name: {"valid": bool(info["valid"]),
                     "expires_at": to_json_value(info.get("expires_at"))}
              for name, info in engine.provider_set.token_status().items()}
    return {
        "breakers": breakers,
        "cache": engine.cache.stats(),
        "tokens": tokens,
        # Where breakers, tokens and the cache live (README, "Shared state"); no password.
        "state": {"backend": "redis" if engine.state.shared else "directory",
                  "location": engine.state.where},
        "database": {"url": engine.database.url_display,
                     "revision": engine.database.revision(), **counts, **storage},
        "last_run": last,
        "budgets": engine.budgets.figures(),
        "alerts": _alerts.evaluate(engine, now=now, open_conflicts=counts["open_conflicts"]),
    }


def providers(engine: Engine, *, check: bool = False) -> list[dict[str, Any]]:
    """Each provider's row; with ``check``, a ``check`` object per configured provider from
    one authenticated call (``None`` for the others)."""
    rows = [info.to_json() for info in engine.provider_set.info()]
    if check:
        from flightsync.engine._check import check_providers  # noqa: PLC0415

        checked = check_providers(engine.provider_set)
        for row in rows:
            row["check"] = checked.get(row["name"])
    return rows


def tracked_window() -> timedelta:
    return timedelta(hours=24)
