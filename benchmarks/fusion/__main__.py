"""``python -m benchmarks.fusion [--data DIR] [--json] [--tolerance MIN]`` from the repo root."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.fusion._load import ATTRIBUTES, days_in, load_day
from benchmarks.fusion._run import RULES, WITHIN_MINUTES, Score, score_day

DEFAULT_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "flight-truth"


def evaluate(data: Path, tolerance_minutes: float) -> dict[str, Any]:
    """Score every rule on every day in ``data``, with all sources and without aa/ua/CO."""
    days = [load_day(data, day) for day in days_in(data)]
    result: dict[str, Any] = {
        "days": [d.day.isoformat() for d in days],
        "tolerance_minutes": tolerance_minutes,
        "rows": sum(d.rows for d in days),
        "duplicate_rows": sum(d.duplicate_rows for d in days),
        "truth_conflicts_left_out": sum(d.truth_conflicts for d in days),
    }
    for label, without in (("all_sources", False), ("without_aa_ua_co", True)):
        score = Score()
        for day in days:
            score_day(day, score, without_truth_sources=without,
                      tolerance_minutes=tolerance_minutes)
        result[label] = {
            "rules": {rule: {name: tally.to_json() for name, tally in per.items()}
                      for rule, per in score.tallies.items()},
            "estimate_seconds_max": round(max(score.estimate_seconds, default=0.0), 3),
            "estimate_seconds_mean": round(
                sum(score.estimate_seconds) / max(1, len(score.estimate_seconds)), 3),
            "claims_per_day_max": max(score.claims, default=0),
        }
    return result


def render(result: dict[str, Any]) -> str:
    lines = [f"days: {', '.join(result['days'])}; tolerance {result['tolerance_minutes']} min"]
    names = (*ATTRIBUTES, "overall")
    for label in ("all_sources", "without_aa_ua_co"):
        block = result[label]
        lines.append("")
        lines.append(f"{label}  (exact / within {WITHIN_MINUTES} min; "
                     f"product estimate {block['estimate_seconds_mean']} s CPU mean, "
                     f"{block['estimate_seconds_max']} s max, for up to "
                     f"{block['claims_per_day_max']} claims)")
        lines.append(f"{'rule':25}" + "".join(f"{n[:14]:>16}" for n in names))
        for rule in RULES:
            cells = []
            for name in names:
                tally = block["rules"][rule][name]
                near = tally[f"within_{WITHIN_MINUTES}_min"]
                cells.append(f"{tally['exact']:.3f}/{near:.3f}" if tally["items"] else "-")
            lines.append(f"{rule:25}" + "".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fusion", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="minutes within which times count as the same (default 0)")
    args = parser.parse_args(argv)
    if not days_in(args.data):
        print(f"error: no <day>-data.txt.gz with a truth file in {args.data}", file=sys.stderr)
        return 2
    result = evaluate(args.data, args.tolerance)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
