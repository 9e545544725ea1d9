"""The scale-out integration test at a larger size, printing its figures.

    python -m bench.scale_out --referrals 60

Runs tests/deploy/test_scale_out.py (Prefect API and services apart on PostgreSQL with Redis,
two workers, two inboxes, the relay; a worker and an inbox killed mid-way) with more
referrals, and prints the phases it measured: when the launch, the agencies' actions, the
sweeps' overdue marks, the deliveries and Prefect's view were done.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from models.settings import PROJECT_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=60)
    args = parser.parse_args(argv)
    env = {**os.environ, "RUJUKAN_SCALE_OUT_REFERRALS": str(args.referrals)}
    command = [sys.executable, "-m", "pytest", "tests/deploy/test_scale_out.py", "-q", "-s"]
    return subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
