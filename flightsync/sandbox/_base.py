"""What every emulated provider shares: the request and reply values, the context a handler
sees (clock, tokens, the truth with this provider's overrides), and a base class whose hooks
each provider fills with its own paths and error bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl

from flightsync.sandbox._truth import FlightTruth

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str                       # without the query string
    query: Mapping[str, str]        # first value of each parameter
    headers: Mapping[str, str]      # lower-case names
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, *, content_type: str = JSON,
             headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(payload).encode(), content_type, headers or {})


@dataclass(frozen=True, slots=True)
class Target:
    """The flight a data call asks for (what faults and overrides match on)."""

    carrier: str
    number: int
    day: date | None = None

    @property
    def designator(self) -> str:
        return f"{self.carrier}{self.number}"


class Context(Protocol):
    """What the server hands a provider while it answers one call."""

    def now(self) -> datetime: ...

    def issue_token(self, provider: str) -> tuple[str, int]:
        """A new token for ``provider`` and its lifetime in seconds."""
        ...

    def token_state(self, provider: str, token: str) -> str:
        """``valid``, ``expired`` or ``unknown``."""
        ...

    def truth(self, provider: str, carrier: str, number: int, day: date) -> FlightTruth | None:
        """The flight as ``provider`` reports it (overrides applied), None if not covered."""
        ...

    def plan(self, provider: str) -> str:
        """The scenario's plan for ``provider``: ``free`` or ``paid``."""
        ...

    def truth_under(self, config: Any, provider: str, carrier: str, number: int,
                    day: date) -> FlightTruth | None:
        """:meth:`truth` under the scenario ``config`` rather than the one in force."""
        ...


class Route(Protocol):
    def __call__(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    pattern: re.Pattern[str]
    kind: str                        # "token" or "data"
    handler: Route


class Provider:
    """One emulated provider: its endpoints, how it authenticates and how it says no."""

    name: ClassVar[str]
    carriers: ClassVar[frozenset[str] | None] = None      # None: every carrier
    oauth: ClassVar[bool] = False

    def endpoints(self) -> tuple[Endpoint, ...]:
        raise NotImplementedError

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        """None when the call may proceed, else the provider's refusal."""
        raise NotImplementedError

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        """The flight a data call asks for, when it names one."""
        return None

    def covers(self, carrier: str) -> bool:
        return self.carriers is None or carrier in self.carriers

    # Error answers in the provider's own format.
    def server_error(self, status: int) -> Reply:
        return Reply.json(status, {"error": "internal error"})

    def rate_limited(self, retry_after: float) -> Reply:
        return Reply.json(429, {"error": "too many requests"},
                          headers={"Retry-After": _seconds(retry_after)})

    def not_found(self) -> Reply:
        return Reply.json(404, {"error": "not found"})

    def token_expired(self) -> Reply:
        return Reply.json(401, {"error": "token expired"})

    def quota_exhausted(self, request: Request) -> Reply:
        """The answer once the plan's quota is spent (fault kind ``quota``)."""
        return Reply.json(429, {"error": "quota exhausted"})


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def retry_after_header(value: float) -> dict[str, str]:
    return {"Retry-After": _seconds(value)}


def bearer(request: Request, *, exact_case: bool) -> str | None:
    """The bearer token of the Authorization header, or None when absent or malformed."""
    value = request.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    wanted = scheme == "Bearer" if exact_case else scheme.lower() == "bearer"
    return (token.strip() or None) if wanted else None


def form(request: Request) -> dict[str, str]:
    """The first value of each field of a form-encoded body."""
    return dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
