"""Row 6: the relay (notifications.relay.relay_now) delivering 2,000 outbox rows to a local JSON
receiver vs plain Apprise sending 2,000 messages with the relay's concurrency.

Two shapes, because digests change what "2,000 messages" means:
- 2,000 rows for the pathway's agencies (a few recipients): the relay sends one digest per
  recipient, so the figure is rows delivered per second.
- 2,000 rows for 2,000 distinct recipients (one tag each): no digest applies, every row is a send
  of its own, and the relay is compared send for send with Apprise.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import apprise
from sqlalchemy import insert, select

from bench.common import Figure, receiver_config
from bench.history import History, prepare
from bench.receiver import Receiver
from models.clock import utcnow
from models.outbox import OutboxMessage, dedup_key
from models.settings import Settings
from models.step import Step
from notifications import relay as relay_module

TARGET = ">= 0.9x plain Apprise"
BODY = (
    "Langkah baru untuk Instansi Anda: identifikasi, batas waktu 2026-12-08 10:00 WIB. "
    "Buka kotak masuk: http://127.0.0.1:8765/inbox (contoh isi pesan untuk uji kecepatan)."
)


def queue_rows(engine, recipients: list[str] | None) -> int:
    """One pending 'assigned' row per open step; to the step's agency, or one tag each."""
    now = utcnow() - timedelta(minutes=1)
    with engine.begin() as conn:
        steps = conn.execute(select(Step.id, Step.referral_id, Step.agency)).all()
        rows = [
            {
                "dedup_key": dedup_key(step_id, "assigned", "bench", n),
                "event": "assigned",
                "recipient": recipients[n] if recipients else agency,
                "referral_id": referral_id,
                "step_id": step_id,
                "due_at": now + timedelta(days=1),
                "created_at": now,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "delivered_to": [],
            }
            for n, (step_id, referral_id, agency) in enumerate(steps)
        ]
        conn.execute(insert(OutboxMessage), rows)
    return len(rows)


def plain_apprise(config: Path, tags: list[str], concurrency: int) -> float:
    """Seconds for plain Apprise to send one message per tag in `tags` (a list with repeats),
    `concurrency` at a time, from one Apprise object loaded from the same config."""
    notifier = apprise.Apprise()
    loaded = apprise.AppriseConfig()
    loaded.add(str(config))
    notifier.add(loaded)
    # Apprise reads a config at its first use; read it now, once, not in eight threads at once.
    if len(notifier) == 0:
        raise RuntimeError(f"no channel in {config}")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(
            pool.map(lambda tag: notifier.notify(body=BODY, title="Rujukan", tag=tag), tags)
        )
    took = time.perf_counter() - start
    if not all(results):
        raise RuntimeError(f"plain Apprise: {sum(1 for r in results if not r)} sends failed")
    return took


def measure(count: int, distinct: bool) -> Figure:
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        config = home / "channels.yaml"
        settings = Settings(
            home=home,
            secret_key="bench-secret-key",  # type: ignore[arg-type]
            apprise_config=config,
            allowed_webhook_hosts="127.0.0.1",
        )
        engine = prepare(settings.resolved_database_url, settings)
        history = History(engine, settings)
        history.add(count, open_every=1)
        recipients = [f"bench-{n:04d}" for n in range(count)] if distinct else None
        queued = queue_rows(engine, recipients)
        with engine.connect() as conn:
            agencies = sorted({a for (a,) in conn.execute(select(Step.agency).distinct())})
        tags = recipients or agencies
        config.write_text(receiver_config(receiver.port, tags))
        start = time.perf_counter()
        report = relay_module.relay_now(settings)
        took = time.perf_counter() - start
        sends = len(receiver.arrivals)
        # The baseline sends one message per row, as a relay without digests would.
        with engine.connect() as conn:
            per_row = [r for (r,) in conn.execute(select(OutboxMessage.recipient))]
        baseline = plain_apprise(config, per_row, relay_module.SENDERS)
        engine.dispose()
    receiver.close()
    if distinct:
        return Figure(
            row=6,
            what=f"relay: {queued:,} rows to {queued:,} distinct recipients (no digests)",
            unit="sends/s",
            figure=round(report.sent / took, 1),
            baseline=round(queued / baseline, 1),
            baseline_what=f"plain Apprise, {queued:,} sends, {relay_module.SENDERS} at a time",
            target=TARGET,
            met=report.sent == queued and (report.sent / took) >= 0.9 * (queued / baseline),
            notes=f"relay {took:.2f} s ({report.sent:,} sent, {report.sends:,} sends, "
            f"{report.failed} failed), plain Apprise {baseline:.2f} s",
        )
    return Figure(
        row=6,
        what=f"relay: {queued:,} rows to the pathway's {len(agencies)} agencies (digests)",
        unit="rows/s",
        figure=round(report.sent / took, 1),
        baseline=round(queued / baseline, 1),
        baseline_what=f"plain Apprise, one message a row, {relay_module.SENDERS} at a time",
        target=TARGET,
        met=report.sent == queued and (report.sent / took) >= 0.9 * (queued / baseline),
        notes=f"relay {took:.2f} s: {report.sent:,} rows in {report.sends:,} sends "
        f"({sends} arrived); plain Apprise {baseline:.2f} s",
    )


def run(smoke: bool) -> list[Figure]:
    count = 50 if smoke else 2000
    return [measure(count, distinct=False), measure(count, distinct=True)]
