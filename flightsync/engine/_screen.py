"""Where every provider observation enters the engine: the plausibility checks, once.

A fetched answer passes here as it comes off the fetch pool (``Engine._absorb``), before it is
merged or cached; a pushed event passes here once it has become its provider's observation
(``_webhook._apply``), before it is merged. Observations read back from the cache or the store
passed here when they were new, so they are not screened again. The checks themselves are
pure (``flightsync.plausibility``); this module adds the clock and the warning.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from flightsync.models import Observation, Rejection, to_json_value
from flightsync.plausibility import Thresholds, check

log = structlog.get_logger(__name__)


def screen(observation: Observation, thresholds: Thresholds, *,
           now: datetime | None = None) -> Observation:
    """``observation`` without its implausible values (each named in a warning and kept in
    its ``rejections``)."""
    cleaned, rejections = check(observation, thresholds, now=now or datetime.now(UTC))
    for rejection in rejections:
        warn(rejection)
    return cleaned


def warn(rejection: Rejection) -> None:
    log.warning("provider.value.rejected", provider=rejection.provider,
                flight=rejection.flight, leg=rejection.origin, field=rejection.field,
                value=to_json_value(rejection.value), reason=rejection.reason,
                detail=rejection.detail)
