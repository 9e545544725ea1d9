"""Rendering an outbox row into a message: subject and plain-text, Markdown and HTML bodies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlmodel import Session

from models.catalog import MESSAGE_TEMPLATES, Catalog, stored_pathway
from models.deadline import local_time_text
from models.directory import Agency
from models.links import LinkClaim, sign
from models.outbox import MessageEvent, OutboxMessage
from models.referral import Referral
from models.settings import Settings
from models.step import Step
from models.vocabulary import DEFAULT_LOCALE, LOCALES, Words

FORMATS = ("text", "markdown", "html")
HIDDEN_STEP = Words(id="tugas layanan yang ditugaskan", en="an assigned service step")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()<>|#!])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class Message:
    """A rendered message: one subject and a body per format."""

    subject: str
    text: str
    markdown: str
    html: str

    def body(self, body_format: str) -> str:
        """The body in 'text', 'markdown' or 'html'."""
        return {"text": self.text, "markdown": self.markdown, "html": self.html}[str(body_format)]


@dataclass(frozen=True)
class MessageContext:
    """The only facts a message may carry: never a name, birth date, contact or exploitation."""

    reference: str
    step: str | None
    deadline: str | None
    link: str
    overdue_table: str = ""  # the Prefect UI's table of every overdue step (escalations)


@lru_cache(maxsize=2)
def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    # Templates are admin files, never user text; the sandbox and StrictUndefined still guard them.
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(MESSAGE_TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=False,
    )


def _markdown_escaped(value: str | None) -> str | None:
    return None if value is None else _MARKDOWN_SPECIAL.sub(r"\\\1", value)


def render(template: str, locale: str, context: MessageContext) -> Message:
    """Render templates/messages/<locale>/<template>.j2 in every format."""
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    name = f"{locale}/{template}.j2"
    plain = {
        "reference": context.reference,
        "step": context.step,
        "deadline": context.deadline,
        "link": context.link,
        "overdue_table": context.overdue_table,
    }
    bodies = {}
    for body_format in FORMATS:
        values = dict(plain, format=body_format)
        if body_format == "markdown":
            values.update(step=_markdown_escaped(context.step))
        compiled = _environment(body_format == "html").get_template(name)
        bodies[body_format] = compiled.render(values).strip() + "\n"
    text_template = _environment(False).get_template(name)
    subject_parts = text_template.blocks["subject"](
        text_template.new_context(dict(plain, format="text"))
    )
    # One line only: a CR/LF in a subject would let text inject mail headers.
    subject = _CONTROL.sub(" ", "".join(subject_parts)).strip()
    return Message(subject=subject, **bodies)


def step_link(settings: Settings, *, agency: str, step_id: int | None, now: datetime) -> str:
    """A signed link for one agency to one step (or to its inbox when step_id is None)."""
    claim = LinkClaim(
        agency=agency,
        step_id=step_id,
        expires=now + timedelta(days=settings.link_lifetime_days),
        issued=now,
    )
    return f"{settings.base_url.rstrip('/')}/s/{sign(settings.resolved_secret_key(), claim)}"


def referral_link(settings: Settings, reference: str) -> str:
    """The address of a referral's timeline (no token in it: the page asks for a sign-in)."""
    return f"{settings.base_url.rstrip('/')}/referrals/{reference}"


def recipient_agency(catalog: Catalog, settings: Settings, tag: str) -> Agency:
    """The directory entry of a recipient tag, or district defaults for a tag that is no agency."""
    if tag in catalog.directory:
        return catalog.agency(tag)
    return Agency(
        slug=tag,
        name=tag,
        kind="tag",
        timezone=settings.timezone,
        locale="id",
        hide_step_titles=True,
    )


def message_context(
    session: Session, *, message: OutboxMessage, catalog: Catalog, settings: Settings, now: datetime
) -> tuple[str, str, MessageContext]:
    """Template name, locale and the minimal context of one outbox row."""
    referral = session.get(Referral, message.referral_id)
    if referral is None:
        raise LookupError(f"outbox row {message.id}: referral {message.referral_id} not found")
    recipient = recipient_agency(catalog, settings, message.recipient)
    locale = recipient.locale
    template = message.event.value
    title: str | None = None
    owner: str | None = None
    coordinators_step = False
    if message.step_id is not None:
        step = session.get(Step, message.step_id)
        if step is None:
            raise LookupError(f"outbox row {message.id}: step {message.step_id} not found")
        pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
        spec = pathway.step(step.key)
        # A public report's triage is the coordinators' work: they sign in to read it.
        coordinators_step = pathway.kind == "report" and step.agency == referral.coordinator_agency
        if message.event == MessageEvent.assigned:
            template = spec.template
        owner = step.agency
        # The step's title ("shelter", "medical examination") can itself reveal too much. It
        # stays hidden wherever the step goes: a title its pathway's agency hides is hidden from
        # the agency a decline re-routed it to, too.
        hiders = {step.agency, spec.agency} & {
            a.slug for a in catalog.directory.agencies if a.hide_step_titles
        }
        hidden = recipient.hide_step_titles or bool(hiders)
        title = HIDDEN_STEP.text(locale) if hidden else spec.title.text(locale)
    deadline = local_time_text(message.due_at, recipient.timezone) if message.due_at else None
    if owner is not None and message.recipient == owner and not coordinators_step:
        link = step_link(settings, agency=owner, step_id=message.step_id, now=now)
    else:
        # The coordinator and the task force act on the referral, not as the step's agency:
        # their link opens its timeline after they sign in with their own token.
        link = referral_link(settings, referral.reference)
    return (
        template,
        locale,
        MessageContext(referral.reference, title, deadline, link, settings.overdue_table_url),
    )


@dataclass(frozen=True)
class DigestRow:
    """One row of a digest: what happened, to which referral and step, by when, and its link."""

    event: str
    reference: str
    step: str | None
    deadline: str | None
    link: str


def render_digest(
    session: Session,
    *,
    messages: list[OutboxMessage],
    catalog: Catalog,
    settings: Settings,
    now: datetime,
) -> Message:
    """One message for several rows of one recipient: a table of references, steps and deadlines
    (the same facts as the single messages, nothing more) and one link to the inbox."""
    recipient = recipient_agency(catalog, settings, messages[0].recipient)
    locale = recipient.locale if recipient.locale in LOCALES else DEFAULT_LOCALE
    rows, own = [], False
    for message in messages:
        _, _, context = message_context(
            session, message=message, catalog=catalog, settings=settings, now=now
        )
        own = own or "/s/" in context.link
        rows.append(
            DigestRow(
                message.event.value, context.reference, context.step, context.deadline, context.link
            )
        )
    shown = rows[: settings.digest_max_rows]
    # The agency's own steps: a signed link to its inbox. The coordinator and the task force act
    # on referrals: their link opens the site, which asks them to sign in.
    inbox = (
        step_link(settings, agency=recipient.slug, step_id=None, now=now)
        if own
        else settings.base_url.rstrip("/") + "/"
    )
    events = {row.event for row in rows}
    values = {
        "count": len(rows),
        "agency": recipient.name,
        "event": events.pop() if len(events) == 1 else "mixed",
        "rows": shown,
        "more": len(rows) - len(shown),
        "inbox": inbox,
    }
    name = f"{locale}/digest.j2"
    bodies = {}
    for body_format in FORMATS:
        listed = shown
        if body_format == "markdown":
            listed = [
                DigestRow(r.event, r.reference, _markdown_escaped(r.step), r.deadline, r.link)
                for r in shown
            ]
        compiled = _environment(body_format == "html").get_template(name)
        bodies[body_format] = (
            compiled.render(dict(values, rows=listed, format=body_format)).strip() + "\n"
        )
    text_template = _environment(False).get_template(name)
    subject_parts = text_template.blocks["subject"](
        text_template.new_context(dict(values, format="text"))
    )
    subject = _CONTROL.sub(" ", "".join(subject_parts)).strip()
    return Message(subject=subject, **bodies)


def render_outbox_message(
    session: Session, *, message: OutboxMessage, catalog: Catalog, settings: Settings, now: datetime
) -> Message:
    """The message an outbox row stands for, in its recipient's locale and local time."""
    template, locale, context = message_context(
        session, message=message, catalog=catalog, settings=settings, now=now
    )
    return render(template, locale, context)
