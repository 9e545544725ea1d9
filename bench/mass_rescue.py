"""Benchmark: a mass rescue of N referrals launched as one batch with the CLI, until every
first message is received.

Run: .venv/bin/python -m bench.mass_rescue [--referrals 500]
Target (DESIGN.md): 500 referrals, every first message received within 30 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.receiver import Receiver
from models.directory import load_directory
from models.settings import PROJECT_ROOT, Settings

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
CONSENT = {
    "tppo-dewasa": [
        "uptd-ppa",
        "polres-ppa",
        "dinsos",
        "dinkes",
        "psikolog",
        "lbh",
        "lpsk",
        "disnaker",
        "ngo",
    ],
    "tppo-anak": ["uptd-ppa", "polres-ppa", "dinsos", "dinkes", "psikolog", "lbh", "lpsk"],
    "pmi-pulang": ["bp3mi", "dinkes", "dinsos", "polres-ppa", "disnaker", "ngo"],
}
FIRST_STEPS = {"tppo-dewasa": 1, "tppo-anak": 2, "pmi-pulang": 1}


def intakes(count: int, rng: random.Random) -> list[dict]:
    """Synthetic intakes over three pathways (obviously fake people)."""
    rows = []
    for n in range(count):
        pathway = rng.choice(list(CONSENT))
        rows.append(
            {
                "pathway": pathway,
                "urgency": rng.choice(["regular", "emergency"]),
                "person": {
                    "name": f"Orang Contoh {n}",
                    "sex": rng.choice("FM"),
                    "birth_year": rng.randint(1970, 2012),
                    "nationality": "ID",
                    "languages": ["id"],
                },
                "consent": {"agencies": CONSENT[pathway], "recorded_by": "coordinator-1"},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(7)
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "var"
        rows = intakes(args.referrals, rng)
        expected = sum(FIRST_STEPS[r["pathway"]] for r in rows)
        batch = Path(tmp) / "rescue.jsonl"
        batch.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        config = Path(tmp) / "channels.yaml"
        slugs = [a.slug for a in load_directory(Settings().agencies_file).agencies]
        config.write_text(receiver.channel_config(slugs))
        env = {
            **os.environ,
            "RUJUKAN_HOME": str(home),
            "RUJUKAN_APPRISE_CONFIG": str(config),
            "RUJUKAN_ALLOWED_WEBHOOK_HOSTS": "127.0.0.1",
            "RUJUKAN_SECRET_KEY": "bench",
        }
        env.pop("PREFECT_API_URL", None)
        subprocess.run(
            [RUJUKAN, "init"], env=env, check=True, capture_output=True, cwd=PROJECT_ROOT
        )
        start = time.perf_counter()
        done = subprocess.run(
            [RUJUKAN, "launch", "--batch", str(batch), "--json"],
            env=env,
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
        )
        command = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(done.stderr)
        last = receiver.wait_for(expected, timeout=120)
        print(f"referrals launched: {len(done.stdout.splitlines())} (one transaction, one command)")
        print(f"first messages expected: {expected}, received: {len(receiver.arrivals)}")
        print(f"`rujukan launch --batch` wall time (incl. start-up and relay): {command:.1f} s")
        if last is None:
            print("NOT all first messages arrived within 120 s")
        else:
            print(
                f"every first message received {last - start:.1f} s after the command started "
                "(target 30 s)"
            )


if __name__ == "__main__":
    main()
