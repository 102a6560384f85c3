"""``python -m benchmarks.fusion [--data DIR] [--folds N] [--json] [--tolerance MIN]``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.fusion._folds import (
    FOLD_RULES,
    learn,
    leave_days_out,
    observed_of,
    rule_policy,
    score_held_out,
)
from benchmarks.fusion._load import ATTRIBUTES, Day, days_in, load_day
from benchmarks.fusion._run import WITHIN_MINUTES, Score
from flightsync.policy import resolve_leg

DEFAULT_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "flight-truth"
SOURCE_SETS = (("all_sources", False), ("without_aa_ua_co", True))


def in_sample(days: Sequence[Day], *, without_truth_sources: bool,
              tolerance_minutes: float) -> Score:
    """Each day resolved with the trust learned on its own claims (the second column)."""
    score = Score()
    for day in days:
        learned = learn([day], without_truth_sources=without_truth_sources,
                        tolerance_minutes=tolerance_minutes)
        day_score = Score(estimate_seconds=[learned.seconds], claims=[learned.claims])
        score_held_out(day, learned, [day], day_score,
                       without_truth_sources=without_truth_sources,
                       tolerance_minutes=tolerance_minutes)
        score.merge(day_score)
    return score


def evaluate(data: Path, tolerance_minutes: float, folds: int | None = None) -> dict[str, Any]:
    """Every rule on every day in ``data``, leave-days-out (``folds``, default one per day)
    and in-sample, with all sources and without aa/ua/CO."""
    days = [load_day(data, day) for day in days_in(data)]
    folds = min(folds or len(days), len(days))
    result: dict[str, Any] = {
        "days": [d.day.isoformat() for d in days],
        "folds": folds,
        "tolerance_minutes": tolerance_minutes,
        "rows": sum(d.rows for d in days),
        "duplicate_rows": sum(d.duplicate_rows for d in days),
        "truth_rows": sum(d.truth_rows for d in days),
        "truth_repeated_rows": sum(d.truth_repeated_rows for d in days),
        "truth_conflicts_left_out": sum(d.truth_conflicts for d in days),
        "truth_conflicts_by_attribute": _summed(d.truth_conflicts_by_attribute for d in days),
        "truth_placeholders_left_out": sum(d.truth_placeholders for d in days),
    }
    for label, without in SOURCE_SETS:
        per_day: dict[str, Score] = {}
        held = leave_days_out(days, folds=folds, without_truth_sources=without,
                              tolerance_minutes=tolerance_minutes, per_day=per_day)
        own = in_sample(days, without_truth_sources=without,
                        tolerance_minutes=tolerance_minutes)
        result[label] = {
            "leave_days_out": held.to_json(),
            "in_sample": own.to_json(),
            "leave_days_out_accuracy_per_day": {
                day: {name: round(score.tally("accuracy", name).share(), 4)
                      for name in ("actual_departure", "overall")}
                for day, score in per_day.items()},
            "estimate_seconds": {
                "learning_days_mean": _mean(held.estimate_seconds),
                "learning_claims_max": max(held.claims, default=0),
                "one_day_mean": _mean(own.estimate_seconds),
                "one_day_max": round(max(own.estimate_seconds, default=0.0), 3),
                "one_day_claims_max": max(own.claims, default=0),
            },
        }
    result["resolve_day_seconds"] = _resolve_seconds(days, tolerance_minutes)
    return result


def _summed(counts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for found in counts:
        for name, count in found.items():
            total[name] = total.get(name, 0) + count
    return dict(sorted(total.items()))


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / max(1, len(values)), 3)


def _resolve_seconds(days: Sequence[Day], tolerance_minutes: float) -> dict[str, Any]:
    """CPU time to resolve every flight of the biggest day with stored trust (all sources)."""
    day = max(days, key=lambda d: d.rows)
    learned = learn([day], without_truth_sources=False,
                             tolerance_minutes=tolerance_minutes)
    observed = observed_of(day, without_truth_sources=False)
    policy = rule_policy("accuracy", tuple(sorted({s for v in observed.values() for s in v})),
                     tolerance_minutes)
    started = time.process_time()
    for by_source in observed.values():
        resolve_leg(policy, by_source, None, updated_at={}, ranks={}, trust=learned.trust,
                    dependence=learned.dependence)
    return {"day": day.day.isoformat(), "observations": day.rows, "flights": len(observed),
            "estimate": round(learned.seconds, 3),
            "resolve": round(time.process_time() - started, 3)}


def render(result: dict[str, Any]) -> str:
    """The leave-days-out table (headline) with the in-sample figure beside each cell."""
    lines = [f"days: {', '.join(result['days'])}; {result['folds']} folds (learn on the "
             f"others, score the fold); tolerance {result['tolerance_minutes']} min",
             f"left out of the gold standard: {result['truth_conflicts_left_out']} items its "
             f"repeated rows disagree on {result['truth_conflicts_by_attribute']}, "
             f"{result['truth_placeholders_left_out']} placeholder gates (TBA, HOLD)"]
    names = (*ATTRIBUTES, "overall")
    for label, _ in SOURCE_SETS:
        block = result[label]
        timing = block["estimate_seconds"]
        lines += ["", f"{label}: exact, leave-days-out (in-sample); "
                  f"estimate {timing['learning_days_mean']} s CPU per fold "
                  f"({timing['learning_claims_max']} claims), one day "
                  f"{timing['one_day_mean']} s mean / {timing['one_day_max']} s max "
                  f"({timing['one_day_claims_max']} claims)"]
        lines.append(f"{'rule':30}" + "".join(f"{n[:15]:>17}" for n in names))
        for rule in FOLD_RULES:
            cells = []
            for name in names:
                held = block["leave_days_out"].get(rule, {}).get(name)
                own = block["in_sample"].get(rule, {}).get(name)
                cells.append(f"{held['exact']:.3f} ({own['exact']:.3f})"
                             if held and own and held["items"] else "-")
            lines.append(f"{rule:30}" + "".join(f"{c:>17}" for c in cells))
        near = block["leave_days_out"]["accuracy"]["overall"][f"within_{WITHIN_MINUTES}_min"]
        per_day = ", ".join(f"{day[5:]} {v['overall']:.3f}/{v['actual_departure']:.2f}"
                            for day, v in block["leave_days_out_accuracy_per_day"].items())
        lines.append(f"accuracy within {WITHIN_MINUTES} min: {near:.3f}; per held-out day "
                     f"(overall/actual departure): {per_day}")
    timing = result["resolve_day_seconds"]
    lines += ["", f"one day ({timing['day']}, {timing['observations']} observations, "
              f"{timing['flights']} flights): estimate {timing['estimate']} s CPU, resolve "
              f"every flight {timing['resolve']} s CPU"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fusion", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--folds", type=int, default=None,
                        help="folds of consecutive days (default: one per day)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="minutes within which times count as the same (default 0)")
    args = parser.parse_args(argv)
    found = days_in(args.data)
    if len(found) < 2:
        print(f"error: leave-days-out needs two or more <day>-data.txt.gz with a truth file "
              f"in {args.data}", file=sys.stderr)
        return 2
    if args.folds is not None and args.folds < 2:
        print("error: --folds must be 2 or more", file=sys.stderr)
        return 2
    result = evaluate(args.data, args.tolerance, args.folds)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
