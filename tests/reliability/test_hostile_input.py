"""Hostile input: template payloads render as text, oversized and control input is refused.

Complements tests/core/test_properties.py (Hypothesis on the intake validator),
tests/core/test_cli.py (bad intakes through the CLI) and tests/notifications/test_templates.py
(the sandbox itself): here the payloads go in through the web API and the pages, as a coordinator
or an agency would type them, and come out on the pages, in the JSON and in the messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from models.access import GrantKind, issue_grant
from models.catalog import Catalog
from models.database import transaction
from models.links import LinkClaim, sign
from models.note import StepNote
from models.outbox import OutboxMessage
from models.referral import Consent, Referral
from models.settings import Settings
from models.step import Step
from notifications.render import render_outbox_message
from web.app import create_app

# What server-side template injection tries (Jinja2 and its cousins); 7777*3 = 23331.
PAYLOADS = [
    "{{ 7777*3 }}",
    "{% raw %}{{ 7777*3 }}{% endraw %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ config }} {{ self }} {{ request }}",
    "{% for x in range(3) %}loop{{ x }}{% endfor %}",
    "{{ '%s' | format(7777*3) }} {{ 'a' | attr('upper') }}",
    "${7777*3} #{7777*3} <%= 7777*3 %>",
    "<script>alert('x')</script> <b onmouseover=alert(1)>",
]
EVALUATED = ["23331", "&lt;class", "<class", "loop0", "uid=", "<script>", "onmouseover=alert(1)>"]
ALL_AGENCIES = [
    "uptd-ppa",
    "polres-ppa",
    "dinsos",
    "dinkes",
    "psikolog",
    "lbh",
    "lpsk",
    "disnaker",
    "ngo",
]


class Clock:
    """A clock the app is given (nothing of ours is patched)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def app_settings(settings: Settings, database_url: str, engine: Engine) -> Settings:
    """Settings for the app on the test's case database."""
    return settings.model_copy(update={"database_url": database_url})


@pytest.fixture
def client(app_settings: Settings, now: datetime) -> Iterator[TestClient]:
    """A client of the real app, cookies kept like a browser."""
    app = create_app(app_settings, clock=Clock(now))
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as test_client:
        yield test_client


def _token(
    engine: Engine, catalog: Catalog, now: datetime, kind: GrantKind, agency: str, holder: str
) -> str:
    with transaction(engine) as session:
        _, token = issue_grant(
            session,
            kind=kind,
            agency=agency,
            holder=holder,
            issued_by="operator:test",
            now=now,
            catalog=catalog,
            lifetime=timedelta(days=30),
        )
    return token


@pytest.fixture
def coordinator(engine, catalog, now) -> dict[str, str]:
    return {
        "Authorization": "Bearer "
        + _token(engine, catalog, now, GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    }


@pytest.fixture
def polres(engine, catalog, now) -> dict[str, str]:
    return {
        "Authorization": "Bearer "
        + _token(engine, catalog, now, GrantKind.agency, "polres-ppa", "ani")
    }


def _sign_in(client: TestClient, token: str) -> None:
    page = client.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post("/signin", data={"csrf": csrf, "token": token}).status_code == 303


def _payload_intake(intake_data: dict, payload: str) -> dict:
    intake_data["person"].update(name=payload, address=payload, home_district=payload[:200])
    intake_data["consent"] = {"override": {"by": "ignored", "reason": payload[:200]}}
    return intake_data


def _count(engine: Engine, model) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def _not_evaluated(text: str, payload: str) -> None:
    for sign_of_evaluation in EVALUATED:
        if sign_of_evaluation not in payload:
            assert sign_of_evaluation not in text, (
                f"{payload!r} was evaluated: {sign_of_evaluation!r}"
            )


@pytest.mark.parametrize("payload", PAYLOADS)
def test_template_payloads_in_free_text_are_kept_and_shown_as_text(
    client,
    engine,
    catalog,
    app_settings,
    now,
    coordinator,
    polres,
    intake_data,
    payload,
    sealer,
):
    launched = client.post(
        "/api/referrals", headers=coordinator, json=_payload_intake(intake_data, payload)
    )
    assert launched.status_code == 201, launched.text
    reference = launched.json()["reference"]
    with Session(engine) as session:
        referral = session.exec(select(Referral).where(Referral.reference == reference)).one()
        ident = session.exec(
            select(Step).where(Step.referral_id == referral.id, Step.key == "identifikasi")
        ).one()
        override = session.exec(select(Consent).where(Consent.referral_id == referral.id)).one()
    # stored as typed (sealed, like the person): data, never a template
    assert sealer.open(override.reason_sealed) == {"reason": payload[:200]}
    step = f"/api/referrals/{reference}/steps/{ident.id}"
    assert client.post(f"{step}/accept", headers=polres, json={}).status_code == 200
    done = client.post(
        f"{step}/complete", headers=polres, json={"outcome": "served", "note": payload}
    )
    assert done.status_code == 200, done.text

    # The JSON gives back exactly what was typed.
    person = client.get(f"/api/referrals/{reference}/person", headers=coordinator).json()
    assert person["facts"]["name"] == payload and person["facts"]["address"] == payload
    assert client.get(step, headers=polres).json()["notes"][0]["text"] == payload

    # The pages show it as text: escaped once, never evaluated.
    _sign_in(client, coordinator["Authorization"].split()[1])
    for path in (f"/referrals/{reference}/person", f"/referrals/{reference}", "/coordinator"):
        page = client.get(path)
        assert page.status_code == 200, path
        _not_evaluated(page.text, payload)
    person_page = client.get(f"/referrals/{reference}/person").text
    assert str(escape(payload)) in person_page  # name, address and the note, as typed
    _sign_in(client, polres["Authorization"].split()[1])
    step_page = client.get(f"/referrals/{reference}/steps/{ident.id}")
    assert step_page.status_code == 200
    assert str(escape(payload)) in step_page.text  # the step's note
    _not_evaluated(step_page.text + client.get("/inbox").text, payload)

    # No free text reaches a message at all, so nothing there can be evaluated either.
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.referral_id == referral.id)
        ).all()
        rendered = [
            render_outbox_message(
                session, message=row, catalog=catalog, settings=app_settings, now=now
            )
            for row in rows
        ]
    assert rendered
    for message in rendered:
        text = message.subject + message.text + message.markdown + message.html
        assert payload not in text and str(escape(payload)) not in text
        _not_evaluated(text, payload)


def test_the_intake_form_shows_a_refused_payload_back_as_text(client, engine, catalog, now):
    _sign_in(
        client, _token(engine, catalog, now, GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    )
    form = client.get("/coordinator/intake")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    payload = PAYLOADS[0] + " " + PAYLOADS[-1]
    refused = client.post(
        "/coordinator/intake",
        data={
            "csrf": csrf,
            "pathway": "tppo-dewasa",
            "name": payload,
            "sex": "F",
            "birth_year": "2001",
            "nationality": "ID",
            "languages": "id",
            "address": payload,
            "override": "1",
            "override_reason": "x" * 201,  # too long: the form comes back with what was typed
        },
    )
    assert refused.status_code == 400
    assert "override.reason" in refused.text and "200" in refused.text
    assert str(escape(payload)) in refused.text
    _not_evaluated(refused.text, payload)
    assert _count(engine, Referral) == 0


def test_names_of_coordinators_and_focal_points_cannot_carry_template_syntax(engine, catalog, now):
    from models.errors import BadInput

    for kind, agency, holder in [
        (GrantKind.coordinator, "uptd-ppa", "{{7777*3}}"),
        (GrantKind.agency, "dinsos", "{% raw %}"),
        (GrantKind.agency, "dinsos", "ani <script>"),
        (GrantKind.agency, "dinsos", "ani\nBcc: x@example.org"),
    ]:
        with pytest.raises(BadInput, match="holder|coordinator id"):
            _token(engine, catalog, now, kind, agency, holder)


# --- oversized and control-character input through the web API ---------------------------------

CYRILLIC_O = "\u043e"


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("name", "N" * 201, "person.name: String should have at most 200 characters"),
        ("name", "Siti\x00Contoh", "person.name: contains control or invisible formatting"),
        ("name", "Siti\u202eContoh", "person.name: contains control or invisible formatting"),
        ("name", "Siti\u200bContoh", "person.name: contains control or invisible formatting"),
        ("name", f"Siti C{CYRILLIC_O}nt{CYRILLIC_O}h", "person.name: mixes Latin letters"),
        ("address", "A" * 401, "person.address: String should have at most 400 characters"),
        ("address", "Jalan\x1b[31mMerah", "person.address: contains control"),
        ("home_district", "D" * 201, "person.home_district: String should have at most 200"),
        ("phone", "+62 812\n0000", "person.phone: is not a phone number"),
        ("override", "R" * 201, "consent.override.reason: String should have at most 200"),
        ("override", "child\x07best interest", "consent.override.reason: contains control"),
        ("pathway", "x" * 10_000, "pathway: String should match pattern"),
    ],
    ids=[
        "long-name",
        "nul",
        "bidi",
        "zero-width",
        "mixed-script",
        "long-address",
        "ansi-escape",
        "long-district",
        "newline-phone",
        "long-override",
        "bell-override",
        "huge-pathway",
    ],
)
def test_oversized_and_control_input_is_refused_by_the_api_naming_the_field(
    client,
    engine,
    coordinator,
    intake_data,
    where,
    value,
    message,
):
    if where == "override":
        intake_data["consent"] = {"override": {"by": "x", "reason": value}}
    elif where == "pathway":
        intake_data["pathway"] = value
    else:
        intake_data["person"][where] = value
    refused = client.post("/api/referrals", headers=coordinator, json=intake_data)
    assert refused.status_code == 400
    assert refused.json()["error"] == "BadInput" and message in refused.json()["message"]
    assert value not in refused.text and "Contoh" not in refused.text  # the input is not echoed
    assert _count(engine, Referral) == 0


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("n" * 2001, "longer than 2000 characters"),
        ("x" * 1_000_000, "larger than this address accepts"),  # 413 before the body is read
        ("korban\x00didampingi", "control or invisible formatting"),
        ("korban\u202edidampingi", "control or invisible formatting"),
    ],
    ids=["long", "one-megabyte", "nul", "bidi"],
)
def test_oversized_and_control_notes_are_refused_and_the_step_is_untouched(
    client,
    engine,
    coordinator,
    polres,
    intake_data,
    note,
    message,
):
    reference = client.post("/api/referrals", headers=coordinator, json=intake_data).json()[
        "reference"
    ]
    with Session(engine) as session:
        ident = session.exec(
            select(Step)
            .join(Referral)
            .where(Referral.reference == reference, Step.key == "identifikasi")
        ).one()
    step = f"/api/referrals/{reference}/steps/{ident.id}"
    assert client.post(f"{step}/accept", headers=polres, json={}).status_code == 200
    refused = client.post(
        f"{step}/complete", headers=polres, json={"outcome": "served", "note": note}
    )
    assert refused.status_code == (413 if len(note) > 16 * 1024 else 400)
    assert message in refused.text or "note: String should have at most 2000" in refused.text
    assert len(refused.text) < 500  # the note is not echoed
    with Session(engine) as session:
        assert session.get(Step, ident.id).status.value == "accepted"
    assert _count(engine, StepNote) == 0


@pytest.mark.parametrize(
    "officer",
    ["ani\x07", "ani\nbudi", "{{ 7777*3 }}", "a" * 61],
    ids=["bell", "newline", "template", "long"],
)
def test_an_officer_name_on_a_link_is_checked_before_it_reaches_the_audit_trail(
    client,
    engine,
    app_settings,
    coordinator,
    intake_data,
    now,
    officer,
):
    reference = client.post("/api/referrals", headers=coordinator, json=intake_data).json()[
        "reference"
    ]
    with Session(engine) as session:
        ident = session.exec(
            select(Step)
            .join(Referral)
            .where(Referral.reference == reference, Step.key == "identifikasi")
        ).one()
    link = sign(
        app_settings.resolved_secret_key(),
        LinkClaim(agency="polres-ppa", step_id=ident.id, expires=now + timedelta(days=7)),
    )
    refused = client.post(
        f"/api/referrals/{reference}/steps/{ident.id}/accept",
        headers={"Authorization": f"Bearer {link}"},
        json={"officer": officer},
    )
    assert refused.status_code == 400, refused.text
    assert officer not in refused.text
    with Session(engine) as session:
        assert session.get(Step, ident.id).status.value == "ready"
