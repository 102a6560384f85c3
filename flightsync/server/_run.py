"""Running the app under uvicorn: the socket bound here first (port 0 picks a free port, and
the line ``listening on http://HOST:PORT`` names the real one), then one process, or
``workers`` processes sharing that socket.

uvicorn bounds what arrives before the app sees it: header size
(``h11_max_incomplete_event_size``), idle keep-alive connections, and connections at once
(``limit_concurrency``, above the app's own request limit, so that the app's JSON 503 is what
a client normally meets).
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from flightsync.server._limits import MAX_HEADER_BYTES

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from flightsync.config import Settings

KEEP_ALIVE_SECONDS = 5
_SETTINGS_FILE = "FLIGHTSYNC_SERVE_SETTINGS_FILE"  # worker processes read their settings here
_RUN_ID = "FLIGHTSYNC_SERVE_RUN_ID"
_VERBOSITY = "FLIGHTSYNC_SERVE_VERBOSITY"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (IPv6 when the host is one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, *, host: str, port: int, workers: int, run_id: str,
          announce: Callable[[str], None], verbosity: int = 0) -> None:
    """Serve until SIGINT or SIGTERM (then requests in progress finish)."""
    import uvicorn  # noqa: PLC0415

    from flightsync.engine import open_engine  # noqa: PLC0415

    # Everything the app opens at its start, opened once here first: a database that cannot
    # be reached or is behind its schema, a bad policy file, is the command's one-line error
    # (and its exit code) before anything listens; and the default SQLite database is created
    # once, not by workers racing to do it.
    with open_engine(settings, run_kind="serve", run_id=run_id,
                     lock_wait_seconds=settings.server.lock_wait_seconds):
        pass
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    limits = settings.server
    # h11 (pure Python, uvicorn's own dependency) whatever else is installed: its incomplete-
    # event limit is what bounds the request line and headers.
    options = {"http": "h11", "log_config": None, "access_log": False, "lifespan": "on",
               "timeout_keep_alive": KEEP_ALIVE_SECONDS,
               "limit_concurrency": limits.max_concurrency * 2 + 16,
               "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
               "timeout_graceful_shutdown": int(limits.request_timeout_seconds) + 1}
    if workers <= 1:
        from flightsync.server._app import create_app  # noqa: PLC0415

        server = uvicorn.Server(uvicorn.Config(create_app(settings, run_id=run_id),
                                               **options))  # type: ignore[arg-type]
        announce(f"listening on http://{shown}:{actual}")
        server.run(sockets=[sock])
        return
    # Worker processes are spawned: they read the settings this process loaded (a private
    # file, removed when the server stops), so secrets never go through the environment.
    handle, name = tempfile.mkstemp(prefix="flightsync-serve-", suffix=".settings")
    try:
        with os.fdopen(handle, "wb") as out:
            pickle.dump(settings, out)
        os.environ[_SETTINGS_FILE] = name
        os.environ[_RUN_ID] = run_id
        os.environ[_VERBOSITY] = str(verbosity)
        from uvicorn.supervisors import Multiprocess  # noqa: PLC0415

        config = uvicorn.Config("flightsync.server._run:worker_app", factory=True,
                                workers=workers, **options)  # type: ignore[arg-type]
        announce(f"listening on http://{shown}:{actual}")
        Multiprocess(config, sockets=[sock]).run()
    finally:
        Path(name).unlink(missing_ok=True)


def worker_app() -> ASGIApp:
    """The app of one worker process (uvicorn's factory)."""
    from flightsync import logs  # noqa: PLC0415
    from flightsync.server._app import create_app  # noqa: PLC0415

    with open(os.environ[_SETTINGS_FILE], "rb") as handle:
        settings = pickle.load(handle)  # noqa: S301 - our own file, mode 0600
    run_id = os.environ.get(_RUN_ID, "serve")
    logs.configure_logging(verbosity=int(os.environ.get(_VERBOSITY, "0")), json=True,
                           run_id=run_id)
    logs.register_settings_secrets(settings, dict(os.environ))
    return create_app(settings, run_id=run_id)


__all__ = ["bind", "serve", "worker_app"]
