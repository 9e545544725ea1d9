"""The mass-rescue run that rows 1 and 2 read: `rujukan serve` on a temporary home, a batch of
500 referrals launched with `rujukan launch --batch` on JSON webhooks and again on email (the
demo SMTP mailbox serve starts), then serve restarted with 10,000 more referrals to catch up.

Run once per process; rows 1 and 2 share its figures.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import apprise
from sqlalchemy import func, select
from sqlmodel import Session

from bench.common import (
    RUJUKAN,
    Sampler,
    Serve,
    cli,
    home_env,
    prefect_count,
    receiver_config,
)
from bench.history import History
from bench.mass_rescue import intakes
from bench.receiver import Receiver
from models.database import make_engine
from models.directory import load_directory
from models.outbox import MessageEvent, OutboxMessage, OutboxStatus
from models.referral import Referral
from models.settings import PROJECT_ROOT, Settings
from notifications.channels import demo_config_text

WAIT = 120  # seconds to wait for every agency to be told / every run to show (2x the 60 s target)
BACKLOG = 10_000


def _batch_state(engine, references: list[str]) -> tuple[int, int, set[str]]:
    """(assigned rows of the batch, how many are sent, their recipients)."""
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage.status, OutboxMessage.recipient)
            .join(Referral, Referral.id == OutboxMessage.referral_id)
            .where(
                Referral.reference.in_(references),  # type: ignore[attr-defined]
                OutboxMessage.event == MessageEvent.assigned,
            )
        ).all()
    sent = sum(1 for status, _ in rows if status == OutboxStatus.sent)
    return len(rows), sent, {r for _, r in rows}


def _visible(api: str, by_pathway: dict[str, list[str]]) -> int:
    return sum(prefect_count(api, refs, f"pathway:{p}") for p, refs in by_pathway.items())


def launch_batch(serve: Serve, engine, count: int, seed: int, label: str) -> dict:
    """Launch a batch while serve runs; wait for every agency told and every run in Prefect."""
    batch = serve.home / f"batch-{label}.jsonl"
    rows = intakes(count, random.Random(seed))
    batch.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with Sampler(serve.home) as sampler:
        start = time.perf_counter()
        done = subprocess.run(
            [RUJUKAN, "launch", "--batch", str(batch), "--json"],
            env=serve.env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        command = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"launch --batch failed: {done.stderr.strip()[-300:]}")
        launched = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        references = [r["reference"] for r in launched]
        by_pathway: dict[str, list[str]] = defaultdict(list)
        for r in launched:
            by_pathway[r["pathway"]].append(r["reference"])
        told = visible_at = None
        expected = sent = visible = 0
        recipients: set[str] = set()
        while time.perf_counter() - start < WAIT and (told is None or visible_at is None):
            if told is None:
                expected, sent, recipients = _batch_state(engine, references)
                if expected and sent == expected:
                    told = time.perf_counter() - start
            if visible_at is None:
                visible = _visible(serve.prefect_api, by_pathway)
                if visible == len(references):
                    visible_at = time.perf_counter() - start
            time.sleep(0.5)
    return {
        "referrals": len(references),
        "command_s": command,
        "told_s": told,
        "rows": expected,
        "sent": sent,
        "recipients": sorted(recipients),
        "visible_s": visible_at,
        "visible": visible,
        "peak_rss_mib": sampler.peak_rss / 2**20,
        "stderr_tail": done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else [],
    }


def plain_apprise_per_agency(config: Path, agencies: list[str]) -> float:
    """Seconds for plain Apprise to send one message to each agency, all at once."""
    notifier = apprise.Apprise()
    loaded = apprise.AppriseConfig()
    loaded.add(str(config))
    notifier.add(loaded)
    # Apprise reads a config at its first use; read it now, once, not in eight threads at once.
    if len(notifier) == 0:
        raise RuntimeError(f"no channel in {config}")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, len(agencies))) as pool:
        results = list(
            pool.map(
                lambda tag: notifier.notify(body="Rujukan: langkah baru", title="Rujukan", tag=tag),
                agencies,
            )
        )
    took = time.perf_counter() - start
    if not all(results):
        failed = sum(1 for r in results if not r)
        raise RuntimeError(f"plain Apprise: {failed} of {len(results)} sends failed")
    return took


async def _bare_runs(api: str, count: int, concurrency: int = 8) -> float:
    """Seconds to create `count` bare flow runs (a name and a tag) through Prefect's client."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Suspended

    @flow(name="bench-bare")
    def bare() -> None:
        """Never run: a target for the runs."""

    with temporary_settings(updates={PREFECT_API_URL: api}):
        async with get_client() as client:
            flow_id = await client.create_flow(bare)
            gate = asyncio.Semaphore(concurrency)

            async def one(n: int) -> None:
                async with gate:
                    await client.create_flow_run(
                        bare, name=f"bare-{n:05d}", tags=["pathway:bench"], state=Suspended()
                    )

            del flow_id
            start = time.perf_counter()
            await asyncio.gather(*(one(n) for n in range(count)))
            return time.perf_counter() - start


@cache
def rescue(count: int = 500, backlog: int = BACKLOG) -> dict:
    """The whole run's figures (cached: rows 1 and 2 ask for the same run)."""
    figures: dict = {}
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = home_env(home)
        settings = Settings(home=home)
        slugs = [a.slug for a in load_directory(settings.agencies_file).agencies]
        config = home / "channels.yaml"
        config.write_text(receiver_config(receiver.port, slugs))
        cli(env, "init")
        engine = make_engine(f"sqlite:///{home / 'rujukan.db'}")
        serve = Serve(home, env)
        try:
            figures["first_start_s"] = serve.start()
            # The baseline on the same server before any batch: beside a catch-up still writing,
            # Prefect's own client can fail outright (a 503 after its five retries on SQLite).
            figures["bare_runs_s"] = asyncio.run(_bare_runs(serve.prefect_api, count))
            figures["json"] = launch_batch(serve, engine, count, 7, "json")
            figures["json"]["baseline_s"] = plain_apprise_per_agency(
                config, figures["json"]["recipients"]
            )
            mailbox_port = int(env["RUJUKAN_MAILBOX_PORT"])
            config.write_text(demo_config_text(settings, mailbox_port))
            figures["email"] = launch_batch(serve, engine, count, 8, "email")
            figures["email"]["baseline_s"] = plain_apprise_per_agency(
                config, figures["email"]["recipients"]
            )
            figures["stop_s"], figures["outlived"] = serve.stop()
            # The restart with a backlog: referrals recorded while serve was down.
            start = time.perf_counter()
            History(engine, settings, audit=True).add(backlog * 10)
            figures["backlog_built_s"] = time.perf_counter() - start
            figures["restart_ready_s"] = serve.start()
            time.sleep(5)
            with engine.connect() as conn:
                figures["restart_synced_after_5s"] = int(
                    conn.execute(
                        select(func.count()).where(Referral.flow_run_id.is_not(None))  # type: ignore[union-attr]
                    ).scalar()
                )
            figures["restart_stop_s"], figures["restart_outlived"] = serve.stop()
        finally:
            serve.stop()
            engine.dispose()
            receiver.close()
    return figures
