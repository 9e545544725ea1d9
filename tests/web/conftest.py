"""Fixtures for the web inbox: the app on a real case database, a test clock, tokens and
referrals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.access import GrantKind, issue_grant
from models.actions import launch
from models.audit import AuditEntry
from models.catalog import Catalog
from models.database import transaction
from models.intake import Intake
from models.links import LinkClaim, sign
from models.referral import Referral
from models.seal import Sealer
from models.settings import Settings
from models.step import Step
from web.app import create_app


@dataclass
class Clock:
    """A clock the test moves by hand (the app is given it; nothing of ours is patched)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock(now: datetime) -> Clock:
    """The app's clock, starting at the fixed Monday morning of `now`."""
    return Clock(now)


@pytest.fixture
def web_settings(settings: Settings, database_url: str, engine: Engine) -> Settings:
    """Settings for the app: the test's case database, no external channels."""
    return settings.model_copy(update={"database_url": database_url})


@pytest.fixture
def client(web_settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """A client of the app (cookies kept between requests, like a browser)."""
    app = create_app(web_settings, clock=clock)
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as test_client:
        yield test_client


@dataclass
class World:
    """Helpers over the test's database: launch referrals, issue tokens, sign links, read audit."""

    engine: Engine
    catalog: Catalog
    sealer: Sealer
    settings: Settings
    clock: Clock

    def launch(self, data: dict) -> Referral:
        """Launch a referral from intake data at the clock's time."""
        with transaction(self.engine) as session:
            return launch(
                session,
                intake=Intake.model_validate(data),
                catalog=self.catalog,
                sealer=self.sealer,
                now=self.clock.now,
            )

    def steps(self, referral: Referral) -> dict[str, Step]:
        """The newest instance of each step key of a referral."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(Step).where(Step.referral_id == referral.id).order_by(Step.id)
            )
            return {s.key: s for s in rows}

    def step(self, step_id: int) -> Step:
        """A step as stored now."""
        with Session(self.engine) as session:
            row = session.get(Step, step_id)
            assert row is not None
            return row

    def grant(self, kind: GrantKind, agency: str, holder: str, days: int = 30) -> str:
        """Issue an access grant and return its token."""
        with transaction(self.engine) as session:
            _, token = issue_grant(
                session,
                kind=kind,
                agency=agency,
                holder=holder,
                issued_by="operator:test",
                now=self.clock.now,
                catalog=self.catalog,
                lifetime=timedelta(days=days),
            )
        return token

    def link(self, agency: str, step_id: int | None, days: float = 7) -> str:
        """A signed link token, as a message carries it."""
        claim = LinkClaim(
            agency=agency,
            step_id=step_id,
            expires=self.clock.now + timedelta(days=days),
            issued=self.clock.now,
        )
        return sign(self.settings.resolved_secret_key(), claim)

    def audit(self, action: str | None = None) -> list[AuditEntry]:
        """Audit entries, optionally of one action, oldest first."""
        with Session(self.engine) as session:
            query = select(AuditEntry).order_by(AuditEntry.seq)
            if action:
                query = query.where(AuditEntry.action == action)
            return list(session.exec(query))


@pytest.fixture
def world(
    engine: Engine, catalog: Catalog, sealer: Sealer, web_settings: Settings, clock: Clock
) -> World:
    """The test's database and helpers."""
    return World(engine, catalog, sealer, web_settings, clock)


@pytest.fixture
def referral(world: World, intake_data: dict) -> Referral:
    """A tppo-dewasa referral: identification (polres-ppa) is ready."""
    return world.launch(intake_data)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}
