"""The benchmark suite: every row of the performance table, each beside a baseline measured in
the same run on the same machine.

    python -m bench                 # the full run (under 15 minutes on 2 cores)
    python -m bench --smoke         # tiny sizes, no `rujukan serve`, no Prefect server (< 60 s)
    python -m bench --only 4,5      # some rows

Prints a table (figure, baseline, ratio, target, met?) and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from bench.common import Figure, machine, not_measured, write_json

ROWS = {
    1: ("bench.row1_mass_rescue", "mass rescue: 500 referrals while serve runs, every agency told"),
    2: ("bench.row2_prefect_view", "every referral visible in Prefect; serve ready with a backlog"),
    3: ("bench.row3_handoff", "hand-off through the API and the CLI; `rujukan --help`"),
    4: ("bench.row4_batch_launch", "batch launch into the database vs a bare insert"),
    5: ("bench.row5_sweep", "sweep over a large history vs selecting the due rows"),
    6: ("bench.row6_relay", "relay vs plain Apprise with the same concurrency"),
    7: ("bench.row7_prefect_sync", "keeping one referral's Prefect view current vs a bare run"),
    8: ("bench.row8_serve_idle", "serve idle with 10,000 open referrals; no child outlives it"),
}
RESULTS = Path(__file__).resolve().parent / "results.json"


def run_row(number: int, smoke: bool) -> list[Figure]:
    """The figures of one row; a row that fails says so as a figure that was not measured."""
    module, title = ROWS[number]
    try:
        return importlib.import_module(module).run(smoke)
    except Exception as exc:  # noqa: BLE001 - one broken row must not hide the others
        traceback.print_exc(file=sys.stderr)
        return [not_measured(number, title, f"the row failed: {type(exc).__name__}: {exc}")]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| # | what | figure | baseline | ratio | target | met? |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        figure = f"{_number(f.figure)} {f.unit}".strip()
        if f.figure is None:  # a wait that ran out is a miss; anything else was not measured
            figure = "not reached" if f.met is False else "not measured"
        baseline = f"{_number(f.baseline)} ({f.baseline_what})" if f.baseline is not None else "-"
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        lines.append(
            f"| {f.row} | {f.what} | {figure} | {baseline} | {ratio} | {f.target} | {met} |"
        )
    notes = [f"- row {f.row}, {f.what}: {f.notes}" for f in figures if f.notes]
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Every row of the performance table beside its baseline from the same run.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no serve (< 60 s)")
    parser.add_argument("--only", help="comma-separated row numbers, e.g. 4,5")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    rows = sorted(ROWS) if not args.only else [int(n) for n in args.only.split(",")]
    unknown = [n for n in rows if n not in ROWS]
    if unknown:
        parser.error(f"no row {unknown[0]}: rows are {', '.join(map(str, ROWS))}")
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    started = time.perf_counter()
    facts = machine()
    print(f"machine: {json.dumps(facts)}", file=sys.stderr)
    figures: list[Figure] = []
    timings = {}
    for number in rows:
        print(f"row {number}: {ROWS[number][1]} ...", file=sys.stderr, flush=True)
        row_start = time.perf_counter()
        figures += run_row(number, args.smoke)
        timings[number] = round(time.perf_counter() - row_start, 1)
        print(f"row {number} took {timings[number]} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - started
    write_json(
        args.out,
        {
            "mode": "smoke" if args.smoke else "full",
            "rows_run": rows,
            "seconds": round(total, 1),
            "seconds_per_row": timings,
            "machine": {**facts, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
            "figures": [f.as_dict() for f in figures],
        },
    )
    print(table(figures))
    print(f"\n{len(figures)} figures in {total:.0f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
