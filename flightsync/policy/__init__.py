"""flightsync.policy: pure conflict resolution between providers (docs/CONTRACTS.md section 8).

``load_policy`` reads ``policy.yaml`` (the only I/O here); ``resolve_leg`` decides one leg's
fields from the providers' observations without touching a clock, a log or a database.
"""

from flightsync.policy._load import load_policy
from flightsync.policy._policy import DEFAULT_POLICY, MODES, RULES, Policy, rules_for
from flightsync.policy._resolve import (
    AGREE,
    CURRENT,
    Decision,
    LegResolution,
    rank_sources,
    resolve_leg,
)
from flightsync.policy._rules import Dependence, Trust

__all__ = [
    "AGREE", "CURRENT", "DEFAULT_POLICY", "MODES", "RULES", "Decision", "Dependence",
    "LegResolution",
    "Policy", "Trust", "load_policy", "rank_sources", "resolve_leg", "rules_for",
]
