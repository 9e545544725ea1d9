"""Row 1: a mass rescue, 500 referrals launched in one batch (`rujukan launch --batch`) while
`rujukan serve` runs, on JSON webhooks and on email (serve's demo SMTP mailbox): seconds until
every receiving agency is told (every outbox row of the batch `sent`), the command's own wall
time, and the peak memory of all processes of the home. Baseline: plain Apprise sending one
message to each receiving agency through the same channels.

The smoke run starts no serve: it launches a small batch with the CLI alone, which sends within
its budget, to a local JSON receiver."""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from bench.common import Figure, Sampler, at_most, cli, home_env, receiver_config
from bench.mass_rescue import intakes
from bench.receiver import Receiver
from bench.serve_rescue import _batch_state, plain_apprise_per_agency, rescue
from models.database import make_engine
from models.directory import load_directory
from models.settings import Settings


def channel_figures(label: str, f: dict, note: str = "") -> list[Figure]:
    agencies = len(f["recipients"])
    return [
        Figure(
            row=1,
            what=f"{f['referrals']} referrals on {label}: every receiving agency told",
            unit="s",
            figure=None if f["told_s"] is None else round(f["told_s"], 1),
            baseline=round(f["baseline_s"], 2),
            baseline_what=f"plain Apprise, one message to each of the {agencies} agencies",
            target="<= 30 s",
            met=False if f["told_s"] is None else f["told_s"] <= 30,
            notes=(
                f"{f['sent']} of {f['rows']} first messages sent"
                + ("" if f["told_s"] is not None else " when the wait ended: not reached")
                + (f"; {note}" if note else "")
            ),
        ),
        Figure(
            row=1,
            what=f"`rujukan launch --batch` wall time on {label}",
            unit="s",
            figure=round(f["command_s"], 1),
            target="<= 5 s",
            met=at_most(f["command_s"], 5),
            notes="; ".join(f["stderr_tail"]),
        ),
        Figure(
            row=1,
            what=f"peak memory of all processes during the {label} batch",
            unit="MiB",
            figure=round(f["peak_rss_mib"]),
            target="< 1024 MiB",
            met=f["peak_rss_mib"] < 1024,
        ),
    ]


def smoke() -> list[Figure]:
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = home_env(home)
        settings = Settings(home=home)
        slugs = [a.slug for a in load_directory(settings.agencies_file).agencies]
        config = home / "channels.yaml"
        config.write_text(receiver_config(receiver.port, slugs))
        cli(env, "init")
        batch = home / "batch.jsonl"
        batch.write_text("\n".join(json.dumps(r) for r in intakes(5, random.Random(7))) + "\n")
        with Sampler(home) as sampler:
            start = time.perf_counter()
            done = cli(env, "launch", "--batch", str(batch), "--json")
            command = time.perf_counter() - start
        references = [json.loads(line)["reference"] for line in done.stdout.splitlines()]
        engine = make_engine(f"sqlite:///{home / 'rujukan.db'}")
        rows, sent, recipients = _batch_state(engine, references)
        engine.dispose()
        baseline = plain_apprise_per_agency(config, sorted(recipients))
    receiver.close()
    f = {
        "referrals": len(references),
        "told_s": command if rows and sent == rows else None,
        "rows": rows,
        "sent": sent,
        "recipients": sorted(recipients),
        "baseline_s": baseline,
        "command_s": command,
        "peak_rss_mib": sampler.peak_rss / 2**20,
        "stderr_tail": done.stderr.strip().splitlines()[-1:],
    }
    return channel_figures("JSON webhooks (smoke: no serve, the command sends)", f)


def run(is_smoke: bool) -> list[Figure]:
    if is_smoke:
        return smoke()
    figures = rescue()
    return [
        *channel_figures("JSON webhooks", figures["json"]),
        *channel_figures("email (local SMTP)", figures["email"]),
    ]
