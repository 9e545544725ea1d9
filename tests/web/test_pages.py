"""The HTML pages through a cookie-keeping client: links, sign-in, CSRF, actions and refusals."""

from __future__ import annotations

import html
import logging
import re

from sqlmodel import select

from models.access import AccessGrant, GrantKind, revoke_grant
from models.database import transaction
from models.intake import CaseOptions
from models.step import StepStatus
from models.vocabulary import CASE_OPTION_LABELS
from web.access_log import RedactLinkTokens, redact_path
from web.session import COOKIE


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the page has no CSRF field"
    return match.group(1)


def open_link(client, token: str):
    return client.get(f"/s/{token}")


def test_link_becomes_an_httponly_cookie_and_a_token_free_address(client, world, referral):
    ident = world.steps(referral)["identifikasi"]
    token = world.link("polres-ppa", ident.id)
    answer = open_link(client, token)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/referrals/{referral.reference}/steps/{ident.id}"
    cookie = answer.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert token not in cookie
    page = client.get(answer.headers["location"])
    assert page.status_code == 200
    assert referral.reference in page.text and "Identifikasi korban" in page.text
    assert "Perempuan" in page.text and "Siti" not in page.text  # granted facts only
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in page.headers["content-security-policy"]


def test_focal_point_accepts_and_completes_in_the_page(client, world, referral):
    ident = world.steps(referral)["identifikasi"]
    step_url = open_link(client, world.link("polres-ppa", ident.id)).headers["location"]
    page = client.get(step_url)
    accepted = client.post(
        f"{step_url}/accept", data={"csrf": csrf_of(page.text), "officer": "Ani"}
    )
    assert accepted.status_code == 303 and accepted.headers["location"].endswith("done=accepted")
    page = client.get(accepted.headers["location"])
    assert "Tugas diterima" in page.text and "Selesaikan tugas" in page.text
    completed = client.post(
        f"{step_url}/complete", data={"csrf": csrf_of(page.text), "outcome": "served", "note": "ok"}
    )
    assert completed.status_code == 303
    assert world.step(ident.id).status == StepStatus.completed
    assert [a.actor for a in world.audit("completed")] == ["agency:polres-ppa/Ani"]


def test_form_without_csrf_is_refused_and_audited(client, world, referral):
    ident = world.steps(referral)["identifikasi"]
    step_url = open_link(client, world.link("polres-ppa", ident.id)).headers["location"]
    for data in ({}, {"csrf": "forged"}):
        answer = client.post(f"{step_url}/accept", data=data)
        assert answer.status_code == 403 and "Formulir kedaluwarsa" in answer.text
    assert world.step(ident.id).status == StepStatus.ready
    refused = world.audit("refused")
    assert [a.detail["error"] for a in refused] == ["CsrfRefused", "CsrfRefused"]
    assert refused[0].actor == "agency:polres-ppa"


def test_missing_reason_and_bad_date_show_the_page_again_with_the_error(client, world, referral):
    ident = world.steps(referral)["identifikasi"]
    step_url = open_link(client, world.link("polres-ppa", ident.id)).headers["location"]
    csrf = csrf_of(client.get(step_url).text)
    nameless = client.post(f"{step_url}/accept", data={"csrf": csrf})  # a link says no name
    assert nameless.status_code == 400 and "Tulis nama Anda" in nameless.text
    assert world.step(ident.id).status == StepStatus.ready
    declined = client.post(
        f"{step_url}/decline", data={"csrf": csrf, "reason": "", "officer": "Ani"}
    )
    assert declined.status_code == 400 and "reason is required" in declined.text
    client.post(f"{step_url}/accept", data={"csrf": csrf, "officer": "Ani"})
    bad_date = client.post(
        f"{step_url}/request-extension",
        data={"csrf": csrf, "reason": "other", "until_date": "31/12/2026"},
    )
    assert bad_date.status_code == 400 and "not a date" in bad_date.text  # the name is kept
    assert world.step(ident.id).extension_until is None
    assert [a.actor for a in world.audit("accepted")] == ["agency:polres-ppa/Ani"]
    assert {a.detail["attempt"] for a in world.audit("refused")} == {
        "accept",
        "decline",
        "request-extension",
    }


def test_link_to_another_agencys_step_and_expired_link(client, world, referral, clock):
    steps = world.steps(referral)
    open_link(client, world.link("dinsos", steps["rumah-aman"].id))
    other = client.get(f"/referrals/{referral.reference}/steps/{steps['identifikasi'].id}")
    # Another agency's step answers as a step that does not exist, naming nothing of it.
    assert other.status_code == 404 and "Tidak ditemukan" in other.text
    old = world.link("polres-ppa", steps["identifikasi"].id, days=1)
    clock.advance(days=2)
    expired = open_link(client, old)
    assert expired.status_code == 403 and "kedaluwarsa" in expired.text
    assert {a.detail["attempt"] for a in world.audit("refused")} == {"view-step", "open-link"}


def test_revoking_a_grant_ends_its_session(client, world, referral, clock):
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    signin = client.get("/signin")
    signed = client.post("/signin", data={"csrf": csrf_of(signin.text), "token": token})
    assert signed.status_code == 303 and signed.headers["location"] == "/coordinator"
    assert client.get("/coordinator").status_code == 200
    timeline = client.get(f"/referrals/{referral.reference}")
    assert timeline.status_code == 200 and "Jejak audit" in timeline.text
    with transaction(world.engine) as session:
        grant = session.exec(select(AccessGrant)).one()
        revoke_grant(session, grant_id=grant.id, revoked_by="operator:test", now=clock.now)
    after = client.get("/coordinator")
    assert after.status_code == 401 and "dicabut" in after.text
    assert client.cookies.get(COOKIE) is None
    assert world.audit("refused")[-1].detail["attempt"] == "session"


def test_wrong_token_and_sign_in_without_csrf(client, world):
    signin = client.get("/signin")
    wrong = client.post("/signin", data={"csrf": csrf_of(signin.text), "token": "rjk_nope"})
    assert wrong.status_code == 401
    no_csrf = client.post("/signin", data={"token": "rjk_nope"})
    assert no_csrf.status_code == 403
    assert [a.detail["attempt"] for a in world.audit("refused")] == ["sign-in", "sign-in"]


def test_the_intake_form_offers_every_case_option_of_the_intake(client, world):
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    client.post("/signin", data={"csrf": csrf_of(client.get("/signin").text), "token": token})
    form = client.get("/coordinator/intake?pathway=tppo-dewasa").text
    for option in CaseOptions.model_fields:
        assert f'name="{option}" value="1" checked' in form  # every option defaults to yes
        assert CASE_OPTION_LABELS[option].id in form


def test_the_intake_asks_the_pathway_first_then_lists_its_agencies_by_name(client, world):
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    client.post("/signin", data={"csrf": csrf_of(client.get("/signin").text), "token": token})
    first = client.get("/coordinator/intake").text
    assert 'method="get"' in first and 'value="tppo-dewasa"' in first
    assert 'name="consent"' not in first  # no agency is offered before the pathway is known
    assert "demo-singkat" not in first  # a demonstration pathway is never offered for a case
    assert "demo-singkat" not in client.get("/coordinator/intake?pathway=demo-singkat").text

    form = client.get("/coordinator/intake?pathway=tppo-anak").text
    pathway = world.catalog.pathways["tppo-anak"]
    ticked = set(re.findall(r'name="consent" value="([a-z0-9-]+)" checked', form))
    assert ticked == pathway.agencies()  # the pathway's receiving agencies, ticked
    for slug in pathway.agencies():
        assert world.catalog.agency(slug).name in form
    offered = set(re.findall(r'name="consent" value="([a-z0-9-]+)"', form))
    assert offered == {a.slug for a in world.catalog.directory.agencies}  # others unticked
    assert 'name="consent_given" value="1" >' in form  # the consent itself is never pre-ticked


def test_coordinator_launches_through_the_form(client, world):
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    client.post("/signin", data={"csrf": csrf_of(client.get("/signin").text), "token": token})
    form = client.get("/coordinator/intake?pathway=tppo-dewasa")
    base = {
        "csrf": csrf_of(form.text),
        "pathway": "tppo-dewasa",
        "urgency": "emergency",
        "name": "Rina Contoh",
        "sex": "F",
        "birth_year": "1999",
        "nationality": "ID",
        "languages": "id, jv",
        "needs_shelter": "1",
        "wants_prosecution": "1",
    }
    consent = sorted(world.catalog.pathways["tppo-dewasa"].agencies())
    demo = client.post("/coordinator/intake", data={**base, "pathway": "demo-singkat"})
    assert demo.status_code == 400 and "Pilih alur layanan kasus ini dulu" in demo.text
    unconfirmed = client.post("/coordinator/intake", data={**base, "consent": consent})
    assert unconfirmed.status_code == 400 and "Persetujuan korban belum dicatat" in unconfirmed.text
    short = client.post(
        "/coordinator/intake",
        data={
            **base,
            "consent": [s for s in consent if s not in ("lpsk", "ngo")],
            "consent_given": "1",
        },
    )
    assert short.status_code == 400
    names = f"{world.catalog.agency('lpsk').name}, {world.catalog.agency('ngo').name}"
    assert f"persetujuan korban untuk {names}" in html.unescape(short.text)  # by name, not slug
    assert 'value="Rina Contoh"' in short.text  # the form keeps what was typed
    assert 'name="consent" value="lpsk" >' in short.text  # and what was unticked
    client.get("/lang/en?next=/")
    english = client.post(
        "/coordinator/intake", data={**base, "consent": consent[:1], "consent_given": "1"}
    )
    assert "This pathway needs the victim's consent for" in html.unescape(english.text)
    client.get("/lang/id?next=/")
    launched = client.post(
        "/coordinator/intake", data={**base, "consent": consent, "consent_given": "1"}
    )
    assert launched.status_code == 303, launched.text
    page = client.get(launched.headers["location"])
    assert "Rujukan dimulai" in page.text and "Darurat" in page.text
    assert "Rina" not in page.text  # the timeline shows no personal data
    person = client.get(launched.headers["location"].split("?")[0] + "/person")
    assert "Rina Contoh" in person.text
    assert world.audit("launched")[-1].actor == "coordinator:coordinator-1"


def test_language_switch_keeps_the_page(client, world, referral):
    ident = world.steps(referral)["identifikasi"]
    step_url = open_link(client, world.link("polres-ppa", ident.id)).headers["location"]
    switched = client.get(f"/lang/en?next={step_url}")
    assert switched.headers["location"] == step_url
    page = client.get(step_url)
    assert "Accept the step" in page.text and 'lang="en"' in page.text
    assert client.get("/lang/en?next=//evil.example").headers["location"] == "/"


def test_access_log_never_records_a_link_token(world, referral):
    token = world.link("polres-ppa", world.steps(referral)["identifikasi"].id)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/s/{token}", "1.1", 303),
        None,
    )
    RedactLinkTokens().filter(record)
    assert token not in record.getMessage() and "/s/[redacted]" in record.getMessage()
    assert redact_path("/lang/en?next=/x") == "/lang/en"


def test_pages_need_a_session(client):
    assert client.get("/inbox").headers["location"] == "/signin?next=/inbox"
    assert client.get("/coordinator").headers["location"] == "/signin?next=/coordinator"
    # a form sent without a session goes to plain sign-in: its address answers no GET
    assert client.post("/coordinator/intake", data={}).headers["location"] == "/signin"


def test_a_declined_message_takes_the_coordinator_to_the_timeline_after_sign_in(
    client, world, referral
):
    from models.actions import Actor, accept_step, complete_step, decline_step, load_step
    from models.outbox import MessageEvent, OutboxMessage
    from notifications.render import render_outbox_message

    now, ref = world.clock.now, referral.reference
    with transaction(world.engine) as session:
        polres = Actor("agency", "ani", "polres-ppa")
        accept_step(
            session=session,
            step=load_step(
                session=session, reference=ref, step_ref="identifikasi", agency="polres-ppa"
            ),
            actor=polres,
            now=now,
        )
        complete_step(
            session=session,
            step=load_step(
                session=session, reference=ref, step_ref="identifikasi", agency="polres-ppa"
            ),
            outcome="served",
            actor=polres,
            now=now,
            catalog=world.catalog,
        )
        decline_step(
            session=session,
            step=load_step(session=session, reference=ref, step_ref="rumah-aman", agency="dinsos"),
            reason="no-capacity",
            actor=Actor("agency", "budi", "dinsos"),
            now=now,
        )
    with transaction(world.engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.referral_id == referral.id)
        ).all()
        links = {
            (r.event, r.recipient): render_outbox_message(
                session, message=r, catalog=world.catalog, settings=world.settings, now=now
            ).text
            for r in rows
        }
    base = world.settings.base_url.rstrip("/")
    declined = links[(MessageEvent.declined, "uptd-ppa")]
    # The step's own agency gets a signed link to its step; the coordinator, who acts on the
    # referral and not as dinsos, gets the timeline's address, with no token in it.
    assert f"{base}/referrals/{ref}" in declined and f"{base}/s/" not in declined
    assert f"{base}/s/" in links[(MessageEvent.assigned, "dinsos")]

    asked = client.get(f"/referrals/{ref}")
    assert (
        asked.status_code == 303 and asked.headers["location"] == f"/signin?next=/referrals/{ref}"
    )
    form = client.get(asked.headers["location"])
    assert f'name="next" value="/referrals/{ref}"' in form.text
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    signed = client.post(
        "/signin", data={"token": token, "csrf": csrf_of(form.text), "next": f"/referrals/{ref}"}
    )
    assert signed.status_code == 303 and signed.headers["location"] == f"/referrals/{ref}"
    timeline = client.get(signed.headers["location"])
    assert (
        timeline.status_code == 200
        and ref in timeline.text
        and "Penempatan di rumah aman" in timeline.text
    )


def test_sign_in_never_sends_anyone_to_another_site(client, world):
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    for target in (
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
    ):
        form = client.get("/signin", params={"next": target})
        signed = client.post(
            "/signin", data={"token": token, "csrf": csrf_of(form.text), "next": target}
        )
        assert signed.headers["location"] == "/coordinator", target
        client.cookies.clear()


def test_withdrawn_links_stop_working_at_once_and_new_ones_work(client, world, referral):
    from fastapi.testclient import TestClient

    from models.access import withdraw_links
    from tests.web.conftest import bearer

    ident = world.steps(referral)["identifikasi"]
    old_link = world.link("polres-ppa", ident.id)
    step_url = open_link(client, old_link).headers["location"]
    assert client.get(step_url).status_code == 200
    api = f"/api/referrals/{referral.reference}/steps/{ident.id}"
    assert client.get(api, headers=bearer(old_link)).status_code == 200
    other_agency = world.link("dinsos", None)

    world.clock.advance(minutes=5)  # the focal point's phone is lost
    with transaction(world.engine) as session:
        withdraw_links(
            session,
            agency="polres-ppa",
            by="coordinator:coordinator-1",
            now=world.clock.now,
            catalog=world.catalog,
        )

    assert client.get(step_url).status_code == 401  # the page it opened closes at the next click
    assert client.get(api, headers=bearer(old_link)).status_code == 401
    with TestClient(client.app, follow_redirects=False) as stranger:  # whoever holds the phone now
        assert open_link(stranger, old_link).status_code == 403
    world.clock.advance(seconds=1)
    new_link = world.link("polres-ppa", ident.id)  # what the next message carries
    assert client.get(api, headers=bearer(new_link)).status_code == 200
    with TestClient(client.app, follow_redirects=False) as fresh:
        assert fresh.get(open_link(fresh, new_link).headers["location"]).status_code == 200
    # A colleague whose browser still holds the withdrawn session opens the new link: the old
    # session is dropped, not merged (which would make the new one look withdrawn too).
    reopened = open_link(client, new_link)
    assert (
        reopened.status_code == 303 and client.get(reopened.headers["location"]).status_code == 200
    )
    assert (
        client.get("/api/inbox", headers=bearer(other_agency)).status_code == 200
    )  # others unaffected

    [withdrawn] = world.audit("links-withdrawn")
    assert withdrawn.actor == "coordinator:coordinator-1" and withdrawn.detail == {
        "agency": "polres-ppa"
    }
    assert {a.detail["attempt"] for a in world.audit("refused")} >= {
        "session",
        "sign-in",
        "open-link",
    }
