"""Building an Engine from Settings: the one place that knows how the parts fit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from flightsync import config
from flightsync.engine import _pending
from flightsync.engine._budgets import open_budgets
from flightsync.engine._cachekey import observation_cache
from flightsync.engine._engine import Engine
from flightsync.policy import load_policy
from flightsync.providers import build_providers
from flightsync.resilience import Breakers, open_state
from flightsync.store import Database


def new_run_id() -> str:
    import uuid  # noqa: PLC0415

    return uuid.uuid4().hex[:16]


@contextmanager
def open_engine(settings: config.Settings, *, run_kind: str = "sync",
                run_id: str | None = None,
                lock_wait_seconds: float | None = None) -> Iterator[Engine]:
    """An Engine for one command; the database must be at head (SchemaBehindError otherwise).
    ``lock_wait_seconds``: how long a write waits for the database (default 30 s)."""
    state_path = config.state_dir(settings)
    with ExitStack() as stack:
        state = open_state(settings)  # the state directory, or Redis with state_url
        stack.callback(state.close)
        url = config.database_url(settings)
        database = Database.open(url, create_default=settings.database_url is None,
                                 lock_wait_seconds=lock_wait_seconds)
        stack.callback(database.close)
        database.check_schema()
        # Runs a cached `sync` recorded without the database (engine/_fast.py) go into
        # sync_run before this command reads or writes anything.
        _pending.flush(database, state_path, url)
        policy = load_policy(settings.policy)
        providers = build_providers(settings, state_path, token_store=state.tokens)
        stack.callback(providers.close)
        # Closed before the database: it joins deliveries that still record their outcome.
        notifier = None
        if settings.notify:  # the notifier brings httpx (~0.1 s): only when someone listens
            from flightsync.engine._notify import build_notifier  # noqa: PLC0415

            notifier = build_notifier(settings.notify, database, os.environ)
        if notifier is not None:
            stack.callback(notifier.close)
        engine = Engine(
            settings=settings, database=database, state=state, providers=providers,
            policy=policy, breakers=Breakers(state, settings.breaker),
            cache=observation_cache(state, settings, providers),
            budgets=stack.enter_context(open_budgets(settings, providers, state_path)),
            run_id=run_id or new_run_id(),
            run_kind=run_kind, notifier=notifier,
        )
        stack.callback(engine.close)
        yield engine
        if settings.metrics.textfile is not None:  # prometheus_client only when configured
            from flightsync.engine._metrics import RUN_KINDS, write_metrics  # noqa: PLC0415

            if run_kind in RUN_KINDS:
                write_metrics(engine)
