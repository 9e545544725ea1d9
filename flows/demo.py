"""Demo data for `rujukan serve --demo`: synthetic people, a few referrals, a first few actions."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlmodel import Session, select

from flows.wake import after_commit
from models.access import AccessGrant, GrantKind, issue_grant, issue_link, revoke_grant
from models.actions import Actor, accept_step, complete_step, launch, load_step
from models.catalog import load_catalog
from models.clock import utcnow
from models.database import engine_for, transaction
from models.errors import RujukanError
from models.intake import Intake
from models.referral import Referral
from models.seal import Sealer
from models.settings import Settings

DEMO_BATCH = "demo-1"
DEMO_COORDINATOR = "demo-coordinator"
DEMO_ISSUER = "serve --demo"
ALL_AGENCIES = [
    "imigrasi",
    "polres-ppa",
    "uptd-ppa",
    "dinsos",
    "dinkes",
    "psikolog",
    "lbh",
    "lpsk",
    "bp3mi",
    "disnaker",
    "iom",
    "ngo",
]

# Obviously synthetic: "Palsu" means fake. No real person has these names or numbers.
DEMO_PEOPLE = [
    ("demo-singkat", "Demo Palsu Satu", "F", 2000, "+62 800 0000 0001"),
    ("demo-singkat", "Demo Palsu Dua", "M", 1995, "+62 800 0000 0002"),
    ("tppo-dewasa", "Demo Palsu Tiga", "F", 1998, "+62 800 0000 0003"),
    ("tppo-anak", "Demo Palsu Empat", "F", 2012, "+62 800 0000 0004"),
]


def demo_intakes() -> list[Intake]:
    """Intakes of the synthetic people, consent recorded for every agency."""
    return [
        Intake.model_validate(
            {
                "pathway": pathway,
                "urgency": "regular",
                "person": {
                    "name": name,
                    "sex": sex,
                    "birth_year": year,
                    "nationality": "ID",
                    "languages": ["id"],
                    "phone": phone,
                },
                "consent": {"agencies": ALL_AGENCIES, "recorded_by": "demo-coordinator"},
            }
        )
        for pathway, name, sex, year, phone in DEMO_PEOPLE
    ]


def demo_references(settings: Settings) -> list[str]:
    """The demo referrals already launched in this home (none if the demo never ran)."""
    with Session(engine_for(settings.resolved_database_url)) as session:
        return list(
            session.exec(
                select(Referral.reference).where(Referral.batch == DEMO_BATCH).order_by(Referral.id)
            )
        )


def run_demo(settings: Settings) -> list[str]:
    """Launch the demo referrals once per home and move two of them along; return references.

    Started again, it launches nothing: the demo referrals carry on where they were.
    """
    # An intake file of earlier versions: the demo keeps its people in this module only.
    (settings.home / "demo" / "batch.jsonl").unlink(missing_ok=True)
    existing = demo_references(settings)
    if existing:
        return existing
    catalog = load_catalog(settings)
    engine = engine_for(settings.resolved_database_url)
    now = utcnow()
    # One transaction for the batch, through the engine call `rujukan launch --batch` makes:
    # no intake file, no Prefect parameter; the runs follow from the committed referrals.
    sealer = Sealer(settings.resolved_secret_key())
    with transaction(engine) as session:
        launched = [
            launch(session, intake=i, catalog=catalog, sealer=sealer, now=now, batch=DEMO_BATCH)
            for i in demo_intakes()
        ]
        references = [r.reference for r in launched]
    police = Actor("agency", "demo-focal-point", "polres-ppa")
    try:
        with transaction(engine) as session:
            # The adult referral moves on: identification done, health and shelter become ready.
            adult = load_step(session=session, reference=references[2], step_ref="identifikasi")
            accept_step(session=session, step=adult, actor=police, now=now)
            complete_step(
                session=session, step=adult, outcome="served", actor=police, now=now,
                catalog=catalog,
            )  # fmt: skip
            # One short-clock step is accepted but will still run late: accepted is not done.
            child = load_step(session=session, reference=references[1], step_ref="identifikasi")
            accept_step(session=session, step=child, actor=police, now=now)
    except RujukanError:
        pass  # a demo step that moved already is no reason to stop serving
    with Session(engine) as session:
        ids = [r.id for r in session.exec(select(Referral).where(Referral.batch == DEMO_BATCH))]
    after_commit(settings, [i for i in ids if i is not None])
    return references


def wait_until_in_prefect(settings: Settings, references: list[str], timeout: float = 60) -> bool:
    """Wait until serve's sweeper has given each of these referrals its Prefect run (it does
    within seconds), so the demo's referrals are in the UI when serve says it is ready. False if
    `timeout` seconds ran out first."""
    engine = engine_for(settings.resolved_database_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as session:
            waiting = session.exec(
                select(Referral.id).where(
                    Referral.reference.in_(references),  # type: ignore[attr-defined]
                    Referral.flow_run_id.is_(None),  # type: ignore[union-attr]
                )
            ).first()
        if waiting is None:
            return True
        time.sleep(0.5)
    return False


def demo_access(settings: Settings, now: datetime | None = None) -> dict[str, str]:
    """Ways into the web inbox for a new user: a coordinator token and two agencies' inbox links.

    The coordinator token is issued anew at each start (valid one day) and printed on the
    operator's own console only; only its hash is stored, so an earlier start's token cannot be
    shown again: it is revoked (audited), and one demo coordinator token works at a time.
    """
    now = now or utcnow()
    base = settings.base_url.rstrip("/")
    catalog = load_catalog(settings)
    with transaction(engine_for(settings.resolved_database_url)) as session:
        earlier = session.exec(
            select(AccessGrant).where(
                AccessGrant.kind == GrantKind.coordinator,
                AccessGrant.holder == DEMO_COORDINATOR,
                AccessGrant.issued_by == DEMO_ISSUER,
                AccessGrant.revoked_at.is_(None),  # type: ignore[union-attr]
                AccessGrant.expires_at > now,
            )
        ).all()
        for grant in earlier:
            assert grant.id is not None
            revoke_grant(session, grant_id=grant.id, revoked_by=DEMO_ISSUER, now=now)
        _, token = issue_grant(
            session,
            kind=GrantKind.coordinator,
            agency=settings.coordinator_agency,
            holder=DEMO_COORDINATOR,
            issued_by=DEMO_ISSUER,
            now=now,
            catalog=catalog,
            lifetime=timedelta(days=1),
        )
        links = {"coordinator token": token, "sign in": f"{base}/signin"}
        for slug in ("polres-ppa", "dinsos"):
            link = issue_link(
                session,
                secret=settings.resolved_secret_key(),
                agency=slug,
                step_id=None,
                lifetime=timedelta(days=1),
                issued_by=DEMO_ISSUER,
                now=now,
                catalog=catalog,
            )
            links[f"inbox {slug}"] = f"{base}/s/{link}"
    return links
