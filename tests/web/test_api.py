"""The JSON API: every action, every refusal (clear error, nothing changed, an audit row)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from models.access import AccessGrant, GrantKind, revoke_grant
from models.database import transaction
from models.note import StepNote
from models.outbox import OutboxMessage
from models.step import StepStatus
from tests.conftest import EXAMPLE_INTAKE
from tests.web.conftest import bearer


def refusals(world, attempt: str) -> list:
    return [a for a in world.audit("refused") if a.detail.get("attempt") == attempt]


@pytest.fixture
def polres(world) -> dict[str, str]:
    return bearer(world.grant(GrantKind.agency, "polres-ppa", "ani"))


@pytest.fixture
def coordinator(world) -> dict[str, str]:
    return bearer(world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1"))


def url(referral, step, action: str = "") -> str:
    return f"/api/referrals/{referral.reference}/steps/{step.id}" + (f"/{action}" if action else "")


# --- the agency's path ----------------------------------------------------------------------------


def test_accept_then_complete_makes_next_steps_ready_and_queues_their_messages(
    client, world, referral, polres, intake_data
):
    ident = world.steps(referral)["identifikasi"]
    answer = client.post(url(referral, ident, "accept"), headers=polres, json={})
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] is True and answer.json()["step"]["status"] == "accepted"

    again = client.post(url(referral, ident, "accept"), headers=polres, json={})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert "already" in again.json()["message"]

    done = client.post(
        url(referral, ident, "complete"),
        headers=polres,
        json={"outcome": "served", "note": "Korban didampingi ibunya"},
    )
    assert done.status_code == 200, done.text
    steps = world.steps(referral)
    assert steps["identifikasi"].status == StepStatus.completed
    assert (
        steps["kesehatan"].status == StepStatus.ready
        and steps["rumah-aman"].status == StepStatus.ready
    )
    with Session(world.engine) as session:
        recipients = {m.recipient for m in session.exec(select(OutboxMessage))}
        note = session.exec(select(StepNote)).one()
    assert {"dinkes", "dinsos"} <= recipients
    # the note is sealed, its text never in the audit trail
    assert "didampingi" not in note.sealed
    assert world.sealer.open(note.sealed)["text"] == "Korban didampingi ibunya"
    actions = [(a.actor, a.action) for a in world.audit()]
    assert ("agency:polres-ppa/ani", "accepted") in actions
    assert ("agency:polres-ppa/ani", "completed") in actions
    assert all("didampingi" not in str(a.detail) for a in world.audit())


def test_step_shows_only_the_granted_facts_and_audits_the_view(client, world, referral, polres):
    ident = world.steps(referral)["identifikasi"]
    answer = client.get(url(referral, ident), headers=polres)
    assert answer.status_code == 200
    facts = answer.json()["facts"]
    assert set(facts) == {"sex", "age_group", "languages"}
    assert "Siti" not in answer.text and "+62" not in answer.text
    viewed = world.audit("person-viewed")
    assert viewed and viewed[-1].detail == {
        "step": "identifikasi",
        "facts": ["sex", "age_group", "languages"],
    }
    assert viewed[-1].actor == "agency:polres-ppa/ani"


def test_decline_needs_a_reason_then_the_coordinator_reroutes(
    client, world, referral, polres, coordinator
):
    ident = world.steps(referral)["identifikasi"]
    missing = client.post(url(referral, ident, "decline"), headers=polres, json={})
    assert missing.status_code == 400 and "reason is required" in missing.json()["message"]
    assert world.step(ident.id).status == StepStatus.ready
    assert refusals(world, "decline")[-1].detail["error"] == "BadInput"

    declined = client.post(
        url(referral, ident, "decline"), headers=polres, json={"reason": "no-capacity"}
    )
    assert declined.status_code == 200 and declined.json()["step"]["status"] == "declined"

    moved = client.post(
        url(referral, ident, "reroute"), headers=coordinator, json={"to": "uptd-ppa"}
    )
    assert moved.status_code == 200, moved.text
    new = moved.json()["step"]
    assert new["agency"] == "uptd-ppa" and new["status"] == "ready" and new["instance"] == 2


def test_extension_request_and_decision(client, world, referral, polres, coordinator, clock):
    ident = world.steps(referral)["identifikasi"]
    until = (clock.now + timedelta(days=3)).isoformat()
    bad = client.post(
        url(referral, ident, "request-extension"),
        headers=polres,
        json={"reason": "victim-unavailable", "until": "next tuesday"},
    )
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["message"]
    naive = client.post(
        url(referral, ident, "request-extension"),
        headers=polres,
        json={"reason": "victim-unavailable", "until": "2026-12-10T17:00"},
    )
    assert naive.status_code == 400 and "time zone" in naive.json()["message"]
    past = client.post(
        url(referral, ident, "request-extension"),
        headers=polres,
        json={"reason": "victim-unavailable", "until": "2026-01-01T17:00+07:00"},
    )
    assert past.status_code == 400 and "past" in past.json()["message"]
    assert world.step(ident.id).extension_until is None
    assert len(refusals(world, "request-extension")) == 3

    asked = client.post(
        url(referral, ident, "request-extension"),
        headers=polres,
        json={"reason": "victim-unavailable", "until": until},
    )
    assert asked.status_code == 200, asked.text
    assert world.step(ident.id).extension_until is not None

    no_choice = client.post(url(referral, ident, "decide-extension"), headers=coordinator, json={})
    assert no_choice.status_code == 400
    approved = client.post(
        url(referral, ident, "decide-extension"), headers=coordinator, json={"approve": True}
    )
    assert approved.status_code == 200, approved.text
    step = world.step(ident.id)
    assert step.due_at == clock.now + timedelta(days=3)
    assert step.extension_until is None and step.deadline_version == 1


def test_coordinator_cancels_a_step_and_the_referral(client, world, referral, coordinator):
    ident = world.steps(referral)["identifikasi"]
    free_text = client.post(
        url(referral, ident, "cancel"),
        headers=coordinator,
        json={"reason": "Siti moved to her aunt"},
    )
    assert free_text.status_code == 400
    assert world.step(ident.id).status == StepStatus.ready
    assert "Siti" not in str([a.detail for a in world.audit()])

    cancelled = client.post(
        url(referral, ident, "cancel"), headers=coordinator, json={"reason": "handled-elsewhere"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["step"]["status"] == "cancelled"

    closed = client.post(
        f"/api/referrals/{referral.reference}/cancel",
        headers=coordinator,
        json={"reason": "consent-withdrawn"},
    )
    assert closed.status_code == 200, closed.text
    again = client.post(
        f"/api/referrals/{referral.reference}/cancel",
        headers=coordinator,
        json={"reason": "consent-withdrawn"},
    )
    assert again.json()["changed"] is False
    timeline = client.get(f"/api/referrals/{referral.reference}", headers=coordinator).json()
    assert timeline["status"] == "cancelled"
    assert {s["status"] for s in timeline["steps"]} <= {"cancelled"}


def test_coordinator_launches_from_an_intake_and_sees_the_person(
    client, world, coordinator, intake_data
):
    launched = client.post("/api/referrals", headers=coordinator, json=intake_data)
    assert launched.status_code == 201, launched.text
    reference = launched.json()["reference"]
    assert launched.json()["ready_steps"] == ["identifikasi"]
    listed = client.get("/api/referrals", headers=coordinator).json()
    assert reference in [r["reference"] for r in listed]
    person = client.get(f"/api/referrals/{reference}/person", headers=coordinator)
    assert person.json()["facts"]["name"] == "Siti Contoh"
    assert world.audit("person-viewed")[-1].detail["facts"][0] == "name"


def test_launch_without_consent_is_refused_without_echoing_the_person(
    client, world, coordinator, intake_data
):
    intake_data["consent"]["agencies"] = ["polres-ppa"]
    refused = client.post("/api/referrals", headers=coordinator, json=intake_data)
    assert refused.status_code == 400 and "consent is missing" in refused.json()["message"]
    intake_data["person"]["birth_year"] = "Siti Contoh"
    malformed = client.post("/api/referrals", headers=coordinator, json=intake_data)
    assert malformed.status_code == 400 and "Siti" not in malformed.text
    assert client.get("/api/referrals", headers=coordinator).json() == []
    assert len(refusals(world, "launch")) == 2


# --- refusals -------------------------------------------------------------------------------------


def test_wrong_agency_gets_404_and_nothing_changes(client, world, referral):
    dinsos = bearer(world.grant(GrantKind.agency, "dinsos", "budi"))  # has a later step here
    ident = world.steps(referral)["identifikasi"]
    for action in ("accept", ""):
        answer = (
            client.post(url(referral, ident, action), headers=dinsos, json={})
            if action
            else client.get(url(referral, ident), headers=dinsos)
        )
        # Another agency's step answers as one that does not exist, naming nothing of it.
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"] == "NotFound" and "identifikasi" not in answer.text
    assert world.step(ident.id).status == StepStatus.ready
    assert {a.detail["attempt"] for a in world.audit("refused")} == {"accept", "view-step"}
    assert all(a.actor == "agency:dinsos/budi" for a in world.audit("refused"))
    assert world.audit("person-viewed") == []


def test_agency_without_a_step_in_the_referral_gets_404(client, world, referral):
    imigrasi = bearer(world.grant(GrantKind.agency, "imigrasi", "ika"))
    ident = world.steps(referral)["identifikasi"]
    assert client.get(f"/api/referrals/{referral.reference}", headers=imigrasi).status_code == 404
    answer = client.post(url(referral, ident, "accept"), headers=imigrasi, json={})
    assert answer.status_code == 404 and answer.json()["error"] == "NotFound"
    assert world.step(ident.id).status == StepStatus.ready
    assert refusals(world, "accept")[-1].referral_id == referral.id


def test_step_link_opens_its_own_step_only(client, world, referral, polres):
    steps = world.steps(referral)
    kesehatan = steps["kesehatan"]
    link = bearer(world.link("dinkes", kesehatan.id))
    me = client.get("/api/me", headers=link).json()
    assert me == {"kind": "agency", "agency": "dinkes", "holder": "", "steps": [kesehatan.id]}
    # the same agency's link to one step cannot act on another referral's step of that agency
    other = world.launch(EXAMPLE_INTAKE)
    other_step = world.steps(other)["kesehatan"]
    assert client.get(url(other, other_step), headers=link).status_code == 404


def test_expired_link_and_revoked_or_expired_tokens_are_refused(client, world, referral, clock):
    ident = world.steps(referral)["identifikasi"]
    link = world.link("polres-ppa", ident.id, days=1)
    token = world.grant(GrantKind.agency, "polres-ppa", "ani", days=2)
    assert client.get("/api/inbox", headers=bearer(token)).status_code == 200

    revoked_token = world.grant(GrantKind.agency, "polres-ppa", "eko")
    with transaction(world.engine) as session:
        grant_id = session.exec(select(AccessGrant.id).where(AccessGrant.holder == "eko")).one()
        revoke_grant(session, grant_id=grant_id, revoked_by="operator:test", now=clock.now)
    revoked = client.post(url(referral, ident, "accept"), headers=bearer(revoked_token), json={})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]

    clock.advance(days=3)
    expired_link = client.post(url(referral, ident, "accept"), headers=bearer(link), json={})
    assert expired_link.status_code == 401 and "expired" in expired_link.json()["message"]
    expired_token = client.post(url(referral, ident, "accept"), headers=bearer(token), json={})
    assert expired_token.status_code == 401 and "expired" in expired_token.json()["message"]
    forged = client.get("/api/inbox", headers=bearer(link[:-3] + "AAA"))
    assert forged.status_code == 401
    missing = client.get("/api/inbox")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"

    assert world.step(ident.id).status == StepStatus.ready
    assert len([a for a in world.audit("refused") if a.detail["attempt"] == "sign-in"]) == 4


def test_illegal_transition_is_409_and_audited(client, world, referral, polres):
    ident = world.steps(referral)["identifikasi"]
    answer = client.post(
        url(referral, ident, "complete"), headers=polres, json={"outcome": "served"}
    )
    assert answer.status_code == 409 and answer.json()["error"] == "IllegalTransition"
    assert world.step(ident.id).status == StepStatus.ready
    assert refusals(world, "complete")[-1].detail == {
        "attempt": "complete",
        "error": "IllegalTransition",
        "via": "api",
    }


def test_agency_cannot_use_coordinator_actions_and_coordinator_cannot_act_for_an_agency(
    client, world, referral, polres, coordinator
):
    ident = world.steps(referral)["identifikasi"]
    assert (
        client.post(url(referral, ident, "reroute"), headers=polres, json={"to": "ngo"}).status_code
        == 403
    )
    assert (
        client.post(url(referral, ident, "accept"), headers=coordinator, json={}).status_code == 403
    )
    assert client.get("/api/referrals", headers=polres).status_code == 403
    assert client.post("/api/referrals", headers=polres, json={}).status_code == 403
    assert world.step(ident.id).status == StepStatus.ready
    assert len(world.audit("refused")) == 4


def test_unknown_fields_and_bad_json_are_refused_without_echo(client, referral, world, polres):
    ident = world.steps(referral)["identifikasi"]
    answer = client.post(
        url(referral, ident, "decline"),
        headers=polres,
        json={"reason": "other", "victim": "Siti Contoh"},
    )
    assert answer.status_code == 400 and "Siti" not in answer.text
    broken = client.post(
        url(referral, ident, "decline"),
        headers={**polres, "content-type": "application/json"},
        content=b"{not json",
    )
    assert broken.status_code == 400
    assert world.step(ident.id).status == StepStatus.ready


def test_codes_and_openapi(client):
    codes = client.get("/api/codes").json()
    assert "no-capacity" in [c["code"] for c in codes["decline-reason"]]
    schema = client.get("/openapi.json").json()
    assert "/api/referrals/{reference}/steps/{step_id}/accept" in schema["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/inbox" in docs.text and "<script" not in docs.text
