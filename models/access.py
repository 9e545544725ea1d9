"""Who may see and do what in the web inbox: revocable access grants and the one access check.

An operator issues a grant to one person (an agency's focal point, or a coordinator) with
`rujukan access issue`; the person signs in with its token. Only a hash of the token is stored, so
a copy of the database cannot sign anyone in. Signed step links (models/links.py) give the same
kind of principal, scoped to one step or one agency's inbox, without a stored grant.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, Session, SQLModel, select

from models.actions import Actor, find_referral
from models.audit import record
from models.catalog import Catalog
from models.database import EnumText, UTCDateTime
from models.errors import AlreadyDone, BadInput, Forbidden, NotFound
from models.links import LinkClaim, sign
from models.referral import Referral
from models.step import Step
from models.vocabulary import AuditAction

TOKEN_PREFIX = "rjk_"
HOLDER = re.compile(r"^[\w][\w .@'-]{0,59}$")
COORDINATOR_ID = re.compile(r"^[\w.@-]{1,60}$")  # as the intake's recorded_by
DEFAULT_GRANT_LIFETIME = timedelta(days=180)


class GrantKind(StrEnum):
    """What a grant lets its holder do."""

    agency = "agency"  # the agency's inbox: see and act on the agency's own steps
    coordinator = "coordinator"  # intake, every referral's timeline, re-route, extensions, cancel
    manager = "manager"  # read only: late steps, step statuses and the task force's report


class AccessGrant(SQLModel, table=True):
    """A per-person sign-in token issued by an operator; revocable, stored only as a hash."""

    __tablename__ = "access_grant"

    id: int | None = Field(default=None, primary_key=True)
    kind: GrantKind = Field(sa_column=Column(EnumText(GrantKind, 12), nullable=False))
    agency: str = Field(max_length=40, description="the agency acted for (a coordinator's own)")
    holder: str = Field(max_length=60, description="who holds the token (focal point, coordinator)")
    token_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the token")
    issued_by: str = Field(max_length=80)
    issued_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    revoked_by: str | None = Field(default=None, max_length=80)


@dataclass(frozen=True)
class Principal:
    """Who is signed in: an agency (all its steps, or some) or a coordinator."""

    kind: GrantKind
    agency: str
    holder: str = ""
    grant_id: int | None = None
    step_ids: frozenset[int] | None = field(default=None)  # None: every step of the agency

    @property
    def actor(self) -> Actor:
        """The actor recorded in the audit trail for what this principal does."""
        if self.kind in (GrantKind.coordinator, GrantKind.manager):
            return Actor(self.kind.value, self.holder)
        return Actor("agency", self.holder, self.agency)

    def named(self, holder: str) -> Principal:
        """The same principal naming the person who acts (a signed link names nobody)."""
        return replace(self, holder=holder)

    @property
    def is_coordinator(self) -> bool:
        """True for a coordinator sign-in."""
        return self.kind == GrantKind.coordinator

    @property
    def is_manager(self) -> bool:
        """True for a manager (task force) sign-in: reads step statuses and reports, acts on
        nothing and sees no personal data."""
        return self.kind == GrantKind.manager


def token_hash(token: str) -> str:
    """The stored form of a token: tokens are long random strings, so one SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


OFFICER_NEEDED = (
    "write your name (the officer acting): a link does not say who you are, and "
    "the audit trail records who acted"
)


HOLDER_RULE = "the holder's name must be 1-60 letters, digits, spaces or . @ ' -"


def check_holder(holder: str) -> str:
    """A holder name fit for the audit trail: one line, letters, digits, space, . @ ' -."""
    holder = holder.strip()
    if not HOLDER.fullmatch(holder):
        raise BadInput(HOLDER_RULE)
    return holder


def issue_grant(
    session: Session,
    *,
    kind: GrantKind,
    agency: str,
    holder: str,
    issued_by: str,
    now: datetime,
    catalog: Catalog,
    lifetime: timedelta = DEFAULT_GRANT_LIFETIME,
) -> tuple[AccessGrant, str]:
    """Create a grant and return it with its token; the token is shown once and never stored."""
    catalog.agency(agency)
    holder = check_holder(holder)
    if kind != GrantKind.agency and not COORDINATOR_ID.fullmatch(holder):
        raise BadInput(
            f"a {kind.value} id is one word: letters, digits and . @ - (e.g. {kind.value}-1)"
        )
    if lifetime <= timedelta(0) or lifetime > timedelta(days=366):
        raise BadInput("a grant lasts between 1 and 366 days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    grant = AccessGrant(
        kind=kind,
        agency=agency,
        holder=holder,
        token_hash=token_hash(token),
        issued_by=issued_by,
        issued_at=now,
        expires_at=now + lifetime,
    )
    session.add(grant)
    session.flush()
    record(
        session,
        actor=issued_by,
        action=AuditAction.access_issued,
        now=now,
        detail={"grant": grant.id, "kind": kind.value, "agency": agency},
    )
    return grant, token


def revoke_grant(session: Session, *, grant_id: int, revoked_by: str, now: datetime) -> AccessGrant:
    """Revoke a grant: its token stops working at the next request."""
    grant = session.get(AccessGrant, grant_id)
    if grant is None:
        raise NotFound(f"no access grant #{grant_id}: see `rujukan access list`")
    if grant.revoked_at is not None:
        raise AlreadyDone(f"access grant #{grant_id} is already revoked; nothing changed")
    grant.revoked_at, grant.revoked_by = now, revoked_by
    session.add(grant)
    record(
        session,
        actor=revoked_by,
        action=AuditAction.access_revoked,
        now=now,
        detail={"grant": grant.id, "kind": grant.kind.value, "agency": grant.agency},
    )
    return grant


class LinkCutoff(SQLModel, table=True):
    """An agency's signed links made before `not_before` open nothing any more (a lost phone)."""

    __tablename__ = "link_cutoff"

    agency: str = Field(primary_key=True, max_length=40)
    not_before: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    by: str = Field(max_length=80)


def withdraw_links(
    session: Session, *, agency: str, by: str, now: datetime, catalog: Catalog
) -> LinkCutoff:
    """Make every signed link of `agency` made until now stop working, and the sessions they opened.

    Messages sent from now on carry new links; access tokens (grants) are not affected.
    """
    catalog.agency(agency)
    cutoff = session.get(LinkCutoff, agency) or LinkCutoff(agency=agency, not_before=now, by=by)
    cutoff.not_before, cutoff.by = now, by
    session.add(cutoff)
    record(
        session, actor=by, action=AuditAction.links_withdrawn, now=now, detail={"agency": agency}
    )
    return cutoff


def check_link_issued(session: Session, agency: str, issued: datetime | None) -> None:
    """Forbidden if the agency withdrew its links after this one was made (or it has no date)."""
    cutoff = session.get(LinkCutoff, agency)
    if cutoff is not None and (issued is None or issued <= cutoff.not_before):
        raise Forbidden("this link was withdrawn: ask the coordinator for a new one")


def list_grants(session: Session) -> list[AccessGrant]:
    """Every grant, newest first."""
    return list(session.exec(select(AccessGrant).order_by(AccessGrant.id.desc())))  # type: ignore[union-attr]


def principal_of_grant(session: Session, grant_id: int, now: datetime) -> Principal:
    """The principal of a grant that is still valid; Forbidden if revoked, expired or unknown."""
    grant = session.get(AccessGrant, grant_id)
    return _principal(grant, now)


def principal_of_token(session: Session, token: str, now: datetime) -> Principal:
    """The principal of a sign-in token; Forbidden if it is unknown, revoked or expired."""
    grant = session.exec(
        select(AccessGrant).where(AccessGrant.token_hash == token_hash(token.strip()))
    ).first()
    return _principal(grant, now)


def _principal(grant: AccessGrant | None, now: datetime) -> Principal:
    if grant is None:
        raise Forbidden("this access token is not valid: ask the operator for a new one")
    if grant.revoked_at is not None:
        raise Forbidden("this access token was revoked: ask the operator for a new one")
    if grant.expires_at <= now:
        raise Forbidden("this access token has expired: ask the operator for a new one")
    return Principal(kind=grant.kind, agency=grant.agency, holder=grant.holder, grant_id=grant.id)


def principal_of_link(claim: LinkClaim) -> Principal:
    """The principal of a verified signed link: one step, or the agency's whole inbox."""
    steps = frozenset({claim.step_id}) if claim.step_id is not None else None
    return Principal(kind=GrantKind.agency, agency=claim.agency, step_ids=steps)


# --- the one access check (deny by default) ----------------------------------------------------


def authorize_referral(session: Session, principal: Principal, reference: str) -> Referral:
    """The referral if the principal may see it: a coordinator or a manager (who sees its steps'
    statuses only), or an agency with a step in it."""
    referral = find_referral(session, reference)
    if principal.is_coordinator or principal.is_manager:
        return referral
    assert referral.id is not None
    mine = session.exec(
        select(Step.id).where(Step.referral_id == referral.id, Step.agency == principal.agency)
    ).all()
    # An agency learns nothing about referrals it has no part in: same answer as "no such code".
    if not mine or (principal.step_ids is not None and not principal.step_ids & set(mine)):
        raise NotFound(f"no referral '{referral.reference}' for agency '{principal.agency}'")
    return referral


def authorize_step(
    session: Session, principal: Principal, reference: str, step_id: int
) -> tuple[Referral, Step]:
    """The referral and step if the principal may open it.

    An agency opens only its own steps, and only once they were given to it (made ready): a step
    still pending, or skipped or cancelled before that, is refused (403). Another agency's step
    gets the answer of a step that does not exist, so a refusal tells nothing of the others.
    """
    if principal.is_manager:
        raise Forbidden("a manager reads the timeline and reports; steps are opened by agencies")
    referral = authorize_referral(session, principal, reference)
    step = session.get(Step, step_id)
    others = not principal.is_coordinator and step is not None and step.agency != principal.agency
    if step is None or step.referral_id != referral.id or others:
        raise NotFound(
            f"you have no step #{step_id} in {referral.reference}: your steps are in your inbox"
        )
    if principal.is_coordinator:
        return referral, step
    if step.ready_at is None:
        raise Forbidden(
            "this step is not yours to act on yet: it opens when the steps before it are done"
        )
    if principal.step_ids is not None and step.id not in principal.step_ids:
        raise Forbidden("this link opens one step only: use the link of the other step")
    return referral, step


# --- signed links given to a person (audited like a grant) -------------------------------------

LINK_LIFETIME_MAX = timedelta(days=366)


def issue_link(
    session: Session,
    *,
    secret: str,
    agency: str,
    step_id: int | None,
    lifetime: timedelta,
    issued_by: str,
    now: datetime,
    catalog: Catalog,
) -> str:
    """Sign a link to one agency's inbox (or one of its steps), audit it, and return the token.

    A link handed to a person opens cases like a grant does, so it leaves one `link-issued`
    entry: who made it, for which agency and step, for how long; never the token. Links inside
    notification messages are not issued here: their outbox rows record them.
    """
    catalog.agency(agency)
    if lifetime <= timedelta(0) or lifetime > LINK_LIFETIME_MAX:
        raise BadInput("a link lasts between 1 and 366 days")
    referral_id = None
    if step_id is not None:
        step = session.get(Step, step_id)
        if step is None or step.agency != agency:
            raise NotFound(f"agency '{agency}' has no step #{step_id}")
        referral_id = step.referral_id
    expires = now + lifetime
    record(
        session,
        actor=issued_by,
        action=AuditAction.link_issued,
        now=now,
        referral_id=referral_id,
        step_id=step_id,
        detail={
            "kind": "step-link" if step_id is not None else "inbox-link",
            "agency": agency,
            "lifetime_days": round(lifetime / timedelta(days=1), 3),
            "expires_at": expires.isoformat(),
        },
    )
    return sign(secret, LinkClaim(agency=agency, step_id=step_id, expires=expires, issued=now))
