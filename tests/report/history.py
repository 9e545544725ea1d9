"""Generated case histories for the report's tests and benchmark: rows written directly, so that
every figure of the report is known in advance.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert
from sqlmodel import Session, select

from models.referral import Referral, ReferralStatus
from models.step import Step, StepStatus

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB
READY = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)


def _referral(session: Session, n: int, created: datetime, **facts) -> Referral:
    referral = Referral(
        reference=f"RJK-T{n:03d}-ZZ",
        pathway_id="tppo-dewasa",
        pathway_version=1,
        coordinator="coordinator-1",
        coordinator_agency="uptd-ppa",
        created_at=created,
        **facts,
    )
    session.add(referral)
    session.flush()
    return referral


def known_history(session: Session) -> list[Referral]:
    """Ten November referrals (one launched 1 November 01:00 WIB, 31 October in UTC) and one
    October referral; the figures test_report.py expects follow from these rows.

    polres-ppa `identifikasi`, step i = 1..10: accepted after i hours; i <= 8 completed after
    i days (outcome served for i <= 6, partly served after), due after 6 days; i <= 2 escalated;
    9 and 10 still open. dinsos `rumah-aman` in referrals 1..3, completed on time. lbh
    `bantuan-hukum` in referrals 1..6, declined after 2 hours (5 no capacity, 1 not eligible).
    """
    referrals = []
    for i in range(1, 11):
        created = datetime(2026, 10, 31, 18, 0, tzinfo=UTC) if i == 10 else READY
        facts = {"exploitation": "labour" if i <= 6 else "sexual", "place": "MY"}
        status = ReferralStatus.completed if i <= 3 else ReferralStatus.active
        referral = _referral(session, i, created, status=status, **facts)
        referrals.append(referral)
        done = i <= 8
        session.add(
            Step(
                referral_id=referral.id,
                key="identifikasi",
                agency="polres-ppa",
                status=StepStatus.completed if done else StepStatus.accepted,
                ready_at=READY,
                due_at=READY + 6 * D,
                accepted_at=READY + i * H,
                closed_at=READY + i * D if done else None,
                outcome=("served" if i <= 6 else "partly-served") if done else None,
                escalated=i <= 2,
            )
        )
        if i <= 3:
            session.add(
                Step(
                    referral_id=referral.id,
                    key="rumah-aman",
                    agency="dinsos",
                    status=StepStatus.completed,
                    ready_at=READY,
                    due_at=READY + D,
                    accepted_at=READY + H,
                    closed_at=READY + 2 * H,
                    outcome="served",
                )
            )
        if i <= 6:
            session.add(
                Step(
                    referral_id=referral.id,
                    key="bantuan-hukum",
                    agency="lbh",
                    status=StepStatus.declined,
                    ready_at=READY,
                    due_at=READY + D,
                    closed_at=READY + 2 * H,
                    decline_reason="not-eligible" if i == 6 else "no-capacity",
                )
            )
    october = _referral(session, 99, datetime(2026, 10, 15, 3, 0, tzinfo=UTC))
    session.add(
        Step(
            referral_id=october.id,
            key="identifikasi",
            agency="polres-ppa",
            status=StepStatus.completed,
            ready_at=october.created_at,
            due_at=october.created_at + D,
            accepted_at=october.created_at + H,
            closed_at=october.created_at + 2 * D,
            outcome="served",
        )
    )
    return referrals


AGENCIES = ["polres-ppa", "dinkes", "dinsos", "psikolog", "lbh", "lpsk", "disnaker", "ngo"]
KEYS = ["identifikasi", "kesehatan", "rumah-aman", "psikososial", "bantuan-hukum",
        "perlindungan-lpsk", "pemulangan", "reintegrasi", "pemantauan"]  # fmt: skip


def random_history(session: Session, *, referrals: int, year: int = 2026, seed: int = 1) -> None:
    """`referrals` referrals spread over a year, up to nine steps each, written in bulk (Core
    inserts with explicit ids, so that the benchmark's 100,000 take seconds, not minutes).

    The ids bypass PostgreSQL's sequence: use it on a database that is only read afterwards.
    """
    rng = random.Random(seed)
    start = datetime(year, 1, 1, tzinfo=UTC)
    agency_of = dict(zip(KEYS, [*AGENCIES[:6], "dinsos", "disnaker", "ngo"], strict=True))
    next_id = (session.exec(select(func.max(Referral.id))).one() or 0) + 1
    batch = 5000
    for first in range(0, referrals, batch):
        rows, steps = [], []
        for n in range(first, min(first + batch, referrals)):
            referral_id = next_id + n
            created = start + timedelta(minutes=rng.randrange(365 * 24 * 60))
            rows.append(
                {
                    "id": referral_id,
                    "reference": f"RJK-B{referral_id:07d}",
                    "pathway_id": "tppo-dewasa",
                    "pathway_version": 1,
                    "urgency": "regular",
                    "coordinator": "coordinator-1",
                    "coordinator_agency": "uptd-ppa",
                    "options": {},
                    "created_at": created,
                    "status": rng.choice(list(ReferralStatus)).value,
                    "exploitation": rng.choice(["labour", "sexual", "online-scam", None]),
                }
            )
            ready = created
            for depth, key in enumerate(KEYS):
                if rng.random() < 0.1 * depth:
                    break
                accepted = ready + timedelta(hours=rng.expovariate(1 / 20))
                closed = accepted + timedelta(days=rng.expovariate(1 / 4))
                done = rng.random() < 0.88
                steps.append(
                    {
                        "referral_id": referral_id,
                        "key": key,
                        "instance": 1,
                        "agency": agency_of[key],
                        "status": "completed" if done else "declined",
                        "ready_at": ready,
                        "due_at": ready + 7 * D,
                        "accepted_at": accepted if done else None,
                        "closed_at": closed,
                        "outcome": "served" if done else None,
                        "decline_reason": None if done else "no-capacity",
                        "escalated": rng.random() < 0.05,
                        "deadline_version": 0,
                        "reminded": False,
                        "overdue": False,
                        "version": 1,
                    }
                )
                ready = closed
        session.execute(insert(Referral), rows)
        session.execute(insert(Step), steps)
    session.flush()


CANARY_PERSON = {
    "name": "Kanarie Zebulon-Quist",
    "sex": "F",
    "birth_year": 1990,
    "nationality": "ID",
    "languages": ["id"],
    "phone": "+62 811 7777 0001",
    "home_district": "Kabupaten Seluma",
    "address": "Jalan Kanari Rahasia 77",
}
CANARY_STRINGS = ("Kanarie", "Zebulon", "Quist", "7777", "Kanari Rahasia", "1990")


def canary_intake(intake_data: dict) -> dict:
    """The example intake with canary personal data and case facts."""
    return {
        **intake_data,
        "person": dict(CANARY_PERSON),
        "facts": {"exploitation": "online-scam", "source": "ngo", "place": "KH"},
    }


def leaks(text: str, reference: str) -> list[str]:
    """The canary strings and the reference code found in `text` (images taken out first)."""
    import re

    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    return [s for s in (*CANARY_STRINGS, reference) if s in text]
