"""Structured logging for one CLI run (README, Logs).

Only the CLI calls :func:`configure_logging`; library code just does
``structlog.get_logger(__name__).info("event.name", key=value)``. Every line carries the run's
``run_id`` and passes through a redaction processor, so no secret reaches a log line: values
under secret-looking keys are masked, and any value registered with :func:`register_secret`
is masked wherever it appears inside a string.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import uuid
from collections.abc import Collection, Iterable, Mapping, MutableMapping
from typing import Any


def _import_structlog_lean() -> None:
    """Import structlog with rich hidden, unless either is loaded already.

    structlog's package imports ``structlog.dev``, which imports rich and pygments (~45 ms,
    a sixth of a cached ``sync``) only to offer rich tracebacks. Our renderers never use them
    (JSON lines, or the console renderer with plain tracebacks), and rich itself stays
    importable afterwards for the tables drawn at a terminal.
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` now fails
    try:
        import structlog  # noqa: F401, PLC0415
    finally:
        del sys.modules["rich"]


_import_structlog_lean()

import structlog  # noqa: E402

MASK = "***"
# Keys whose values are secrets, matched as whole words inside snake_case or dashed names.
_SECRET_KEY = re.compile(
    r"(^|[_\-])(secret|token|api[_\-]?key|password|passwd|authorization|client[_\-]secret|"
    r"client[_\-]key|cookie|credentials?)($|[_\-])",
    re.IGNORECASE,
)
# Shorter values would mask ordinary words; real credentials are longer.
_MIN_SECRET_LENGTH = 6
_secrets: set[str] = set()
_secrets_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()
_write_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log line (and in CLI error messages)."""
    global _secrets_pattern  # noqa: PLW0603 - a process-wide registry is the point
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def register_secrets(values: Iterable[str | None]) -> None:
    """:func:`register_secret` for each value."""
    for value in values:
        register_secret(value)


# The password of a URL's user info (``scheme://user:PASSWORD@host``), up to its ``@``.
_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@/\s]*@")


def redact_url(url: str) -> str:
    """``url`` (or any text holding URLs) with each user-info password replaced by ``***``,
    the way a database URL is shown: ``https://user:***@host/``."""
    return _URL_PASSWORD.sub(rf"\g<1>{MASK}@", url)


def redact_text(text: str) -> str:
    """``text`` with every registered secret, and every password inside a URL, replaced by
    ``***``."""
    pattern = _secrets_pattern
    text = redact_url(text) if "@" in text else text
    return pattern.sub(MASK, text) if pattern is not None else text


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, str | bytes) and value and _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(key, v) for v in value)
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]
           ) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-keyed values and registered secrets everywhere."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(str(key), event_dict[key])
    return event_dict


class _StderrLogger:
    """Writes each rendered line to the *current* ``sys.stderr``.

    structlog's PrintLogger binds the stream once; test runners swap ``sys.stderr`` per
    invocation, and a bound stream would outlive its runner.
    """

    def msg(self, message: str) -> None:
        # One write per line under a lock: print() writes the text and the newline
        # separately, and the fetch threads' lines would run into each other.
        with _write_lock:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _logger_factory(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def register_settings_secrets(settings: Any, env: Mapping[str, str], *,
                              public: Collection[str] = ()) -> None:
    """Register every secret a run's settings can carry: provider credentials, the inbound
    webhook secret (whole and its key without the ``whsec_`` prefix), the outbound
    subscribers' secrets (named by ``secret_env``) and the database URL's password."""
    values: list[str | None] = [settings.webhook_secret,
                                getattr(settings, "flightaware_alert_token", None)]
    if settings.webhook_secret and settings.webhook_secret.startswith("whsec_"):
        values.append(settings.webhook_secret.removeprefix("whsec_"))
    for provider in settings.providers.values():
        values.extend(provider.credentials.values())
    for target in settings.notify:
        if target.secret_env:
            secret = env.get(target.secret_env)
            values.extend([secret, secret.removeprefix("whsec_") if secret else None])
    for url in (settings.database_url, env.get("FLIGHTSYNC_DATABASE_URL")):
        values.append(_url_password(url))
    register_secrets(v for v in values if v not in public)


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    from urllib.parse import unquote, urlsplit  # noqa: PLC0415

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


_process_run_id: str | None = None


def _add_run_id(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]
                ) -> MutableMapping[str, Any]:
    """Context variables do not reach the fetch pool's worker threads; one CLI process is one
    run, so a line without a bound run_id gets the process's."""
    if _process_run_id is not None:
        event_dict.setdefault("run_id", _process_run_id)
    return event_dict


def _level(verbosity: int) -> int:
    if verbosity < 0:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)


def configure_logging(*, verbosity: int, json: bool, run_id: str | None) -> None:
    """Set up structlog for this process: JSON lines (``json=True``) or a readable console on
    stderr, at WARNING (``verbosity`` 0), INFO (1), DEBUG (2+) or ERROR (-1, ``-q``); binds
    ``run_id`` so every line of the run carries it."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                           exception_formatter=structlog.dev.plain_traceback))
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_run_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks become text before redaction, so a secret in an exception is masked too.
        structlog.processors.format_exc_info,
        redact,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_level(verbosity)),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )
    global _process_run_id  # noqa: PLW0603 - one CLI process is one run
    _process_run_id = run_id
    structlog.contextvars.clear_contextvars()
    if run_id is not None:
        structlog.contextvars.bind_contextvars(run_id=run_id)


def new_run_id() -> str:
    """A fresh run id: 16 hex characters, unique enough to find one run in the logs."""
    return uuid.uuid4().hex[:16]


def current_run_id() -> str | None:
    """The run id bound by :func:`configure_logging`, for code that records the run."""
    value = structlog.contextvars.get_contextvars().get("run_id")
    return value if isinstance(value, str) else None


__all__ = [
    "MASK", "configure_logging", "current_run_id", "new_run_id", "redact", "redact_text",
    "redact_url", "register_secret", "register_secrets", "register_settings_secrets",
]
