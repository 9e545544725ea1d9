"""Synthetic case history written with bulk Core inserts (fast), not through the engine.

The rows are what the engine would have written for referrals on the tppo-dewasa pathway (ten
steps each), without persons or consents, which no measured path reads. With `audit=True` every
referral gets its 'launched' entry and one 'ready' entry per open step, hash-chained exactly as
models/audit.py chains them, so catch-up and `rujukan audit verify` see a real trail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from models.audit import AuditEntry, AuditHead, entry_hash
from models.catalog import load_catalog, register_pathways
from models.database import make_engine, migrate, transaction
from models.referral import REFERENCE_ALPHABET, Referral
from models.settings import Settings
from models.step import OPEN, Step, StepStatus

PATHWAY = "tppo-dewasa"
STEPS_PER_REFERRAL = 10
CHUNK = 10_000
NOW = datetime(2026, 12, 7, 2, tzinfo=UTC)


def reference(n: int) -> str:
    """A distinct, well-formed reference code for the n-th synthetic referral."""
    chars = []
    for _ in range(6):
        n, digit = divmod(n, len(REFERENCE_ALPHABET))
        chars.append(REFERENCE_ALPHABET[digit])
    code = "".join(reversed(chars))
    return f"RJK-{code[:4]}-{code[4:]}"


def prepare(url: str, settings: Settings) -> Engine:
    """Migrate the database at `url` and register the pathways; its engine."""
    migrate(url)
    engine = make_engine(url)
    with transaction(engine) as session:
        register_pathways(session, load_catalog(settings), NOW)
    return engine


class History:
    """Appends referrals and their steps to one case database."""

    def __init__(self, engine: Engine, settings: Settings, *, audit: bool = False) -> None:
        self.engine = engine
        self.audit = audit
        catalog = load_catalog(settings)
        pathway = catalog.pathway(PATHWAY)
        self.version = pathway.version
        specs = pathway.steps
        # Ten steps a referral: the pathway's keys in order, repeated instances after them.
        self.slots = [
            (specs[i % len(specs)].key, i // len(specs) + 1, specs[i % len(specs)].agency)
            for i in range(STEPS_PER_REFERRAL)
        ]
        with engine.connect() as conn:
            self.referrals = int(conn.execute(select(func.max(Referral.id))).scalar() or 0)
            self.steps = int(conn.execute(select(func.max(Step.id))).scalar() or 0)
            head = conn.execute(select(AuditHead.seq, AuditHead.hash)).first()
        self.seq, self.hash = (head[0], head[1]) if head else (0, "0" * 64)

    def add(self, steps: int, *, open_every: int = 20) -> None:
        """Append `steps` steps (whole referrals): one in `open_every` is open (ready, due in a
        week), the others completed a year ago."""
        referrals = steps // STEPS_PER_REFERRAL
        for start in range(0, referrals, CHUNK // STEPS_PER_REFERRAL):
            count = min(CHUNK // STEPS_PER_REFERRAL, referrals - start)
            self._chunk(count, open_every)

    def _chunk(self, count: int, open_every: int) -> None:
        first = self.referrals + 1
        referral_rows, step_rows, audit_rows = [], [], []
        long_ago = NOW - timedelta(days=365)
        due = NOW + timedelta(days=7)
        for rid in range(first, first + count):
            referral_rows.append(
                {
                    "id": rid,
                    "reference": reference(rid),
                    "pathway_id": PATHWAY,
                    "pathway_version": self.version,
                    "urgency": "regular",
                    "status": "active",
                    "coordinator": "coordinator-1",
                    "coordinator_agency": "uptd-ppa",
                    "options": {},
                    "created_at": long_ago,
                    "batch": "bench",
                }
            )
            if self.audit:
                audit_rows.append(
                    self._entry("launched", rid, None, {"reference": reference(rid)}, long_ago)
                )
            for key, instance, agency in self.slots:
                self.steps += 1
                is_open = self.steps % open_every == 0
                step_rows.append(
                    {
                        "id": self.steps,
                        "referral_id": rid,
                        "key": key,
                        "instance": instance,
                        "agency": agency,
                        "status": "ready" if is_open else "completed",
                        "ready_at": long_ago,
                        "due_at": due if is_open else long_ago,
                        "closed_at": None if is_open else long_ago,
                        "outcome": None if is_open else "served",
                        "deadline_version": 0,
                        "reminded": True,
                        "overdue": False,
                        "escalated": False,
                        "next_check_at": due if is_open else None,
                        "version": 1,
                    }
                )
                if self.audit and is_open:
                    detail = {"step": key, "agency": agency, "due_at": due.isoformat()}
                    audit_rows.append(self._entry("ready", rid, self.steps, detail, long_ago))
        with self.engine.begin() as conn:
            conn.execute(insert(Referral), referral_rows)
            conn.execute(insert(Step), step_rows)
            if audit_rows:
                conn.execute(insert(AuditEntry), audit_rows)
                if conn.execute(select(AuditHead.id)).first() is None:
                    conn.execute(insert(AuditHead).values(id=1, seq=self.seq, hash=self.hash))
                else:
                    conn.execute(update(AuditHead).values(seq=self.seq, hash=self.hash))
            if conn.dialect.name == "postgresql":  # explicit ids: move the sequences past them
                for table in ("referral", "step"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
        self.referrals += count

    def _entry(self, action: str, rid: int, step_id: int | None, detail: dict, at) -> dict:
        self.seq += 1
        entry = AuditEntry(
            seq=self.seq,
            at=at,
            actor="coordinator:coordinator-1",
            action=action,
            referral_id=rid,
            step_id=step_id,
            detail=detail,
            prev_hash=self.hash,
            hash="",
        )
        entry.hash = entry_hash(self.hash, entry)
        self.hash = entry.hash
        row = entry.model_dump()
        return row

    def make_due(self, count: int, moment: datetime) -> int:
        """Make `count` open steps fall due a minute before `moment` (spread over the history);
        how many it changed."""
        with self.engine.begin() as conn:
            open_ids = conn.execute(
                select(Step.id).where(Step.status.in_(OPEN)).order_by(Step.id)  # type: ignore[attr-defined]
            ).scalars().all()  # fmt: skip
            every = max(1, len(open_ids) // max(count, 1))
            chosen = open_ids[::every][:count]
            past = moment - timedelta(minutes=1)
            for start in range(0, len(chosen), 5000):
                conn.execute(
                    update(Step)
                    .where(Step.id.in_(chosen[start : start + 5000]))  # type: ignore[union-attr]
                    .values(due_at=past, next_check_at=past)
                )
        return len(chosen)


def open_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(Step).where(Step.status == StepStatus.ready)
            ).scalar()
        )
