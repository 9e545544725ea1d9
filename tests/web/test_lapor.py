"""The public reporting page, the webhook and the coordinators' report pages, through the app.

On SQLite only: the engine's report functions run on both databases in tests/core/
test_reports.py. Nothing of ours is patched: a distinct client address is the test client's own,
the clock is the app's test clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from models.access import GrantKind
from models.outbox import OutboxMessage
from models.public_report import PublicReport
from models.referral import Referral
from notifications.render import render_outbox_message
from tests.web.test_pages import csrf_of
from web.app import create_app

ADDRESS = "198.51.100.23"
FORWARDED = "192.0.2.201"
AGENT = "CanaryBrowser/3.1 (reporter)"
CANARY = "KANARI-9913 disekap di gudang dekat pelabuhan"
CONTACT = "kanari.pelapor@example.org"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
RECEIPT = re.compile(r'id="receipt">([0-9 ]+)<')


def _receipt(page: str) -> str:
    match = RECEIPT.search(page)
    assert match, "no receipt on the page"
    return match.group(1)


def _app_client(settings, clock, address: str = ADDRESS, **update) -> TestClient:
    app = create_app(settings.model_copy(update=update), clock=clock)
    return TestClient(
        app,
        base_url="http://127.0.0.1:8765",
        follow_redirects=False,
        client=(address, 4321),
        headers={"User-Agent": AGENT, "X-Forwarded-For": FORWARDED},
    )


def _signed(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Rujukan-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def test_public_pages_keep_no_cookie_no_cache_and_load_nothing_from_elsewhere(client):
    for path in ("/lapor", "/lapor?lang=en"):
        page = client.get(path)
        assert page.status_code == 200 and "set-cookie" not in page.headers
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text and "/static/" not in page.text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        external = [s for s in sources if not s.startswith(("/lapor", "tel:", "data:"))]
        assert external == ["https://www.bmkg.go.id/"]  # the quick exit, and nothing else
    filed = client.post("/lapor", data={"what": "Ada penampungan calon pekerja ilegal"})
    assert filed.status_code == 200 and "set-cookie" not in filed.headers
    assert filed.headers["cache-control"] == "no-store" and _receipt(filed.text)
    assert client.cookies.jar.__len__() == 0
    empty = client.post("/lapor", data={"what": "  ", "lang": "en"})
    assert empty.status_code == 400 and "Write what happened" in empty.text


def test_nothing_of_the_reporter_reaches_any_store_message_or_log(
    web_settings, clock, engine, caplog
):
    caplog.set_level(logging.DEBUG)
    secret = "webhook-test-secret"
    with _app_client(web_settings, clock, report_webhook_secret=SecretStr(secret)) as client:
        filed = client.post(
            "/lapor",
            data={
                "what": CANARY,
                "place": CANARY,
                "nationality": CANARY,
                "danger_now": "yes",
                "contact_wanted": "yes",
                "contact": CONTACT,
            },
        )
        receipt = _receipt(filed.text)
        assert client.post("/lapor/status", data={"receipt": receipt}).status_code == 200
        wrong = client.post("/lapor/status", data={"receipt": "1111 2222 3333 4444 5555"})
        assert wrong.status_code == 404
        body = json.dumps({"what": CANARY, "contact": CONTACT}).encode()
        hooked = client.post("/api/reports", content=body, headers=_signed(secret, body))
        assert hooked.status_code == 201
    with Session(engine) as session:
        dump = []
        for table in SQLModel.metadata.sorted_tables:
            rows = session.execute(text(f'SELECT * FROM "{table.name}"')).all()  # noqa: S608
            dump.append(f"{table.name}: {[tuple(r) for r in rows]!r}")
        messages = [
            render_outbox_message(
                session,
                message=m,
                catalog=create_app(web_settings).state.web.catalog,
                settings=web_settings,
                now=clock.now,
            )  # fmt: skip
            for m in session.exec(select(OutboxMessage))
        ]
        assert len(session.exec(select(PublicReport)).all()) == 2
    stored = "\n".join(dump)
    sent = repr(messages)
    logged = caplog.text
    assert "public_report" in stored and messages
    for secret_text in (CANARY, "KANARI", CONTACT, ADDRESS, FORWARDED, AGENT, "CanaryBrowser"):
        assert secret_text not in stored, secret_text
        assert secret_text not in sent, secret_text
        assert secret_text not in logged, secret_text


def test_receipt_guessing_is_throttled_per_client(web_settings, clock, world):
    with _app_client(web_settings, clock, receipt_checks_per_client="3/minute") as reporter:
        receipt = _receipt(reporter.post("/lapor", data={"what": "Ada korban"}).text)
        app = reporter.app
        for guess in ("1" * 20, "2" * 20, "3" * 20):
            answer = reporter.post("/lapor/status", data={"receipt": guess})
            assert answer.status_code == 404 and "tidak membuka laporan" in answer.text
        blocked = reporter.post("/lapor/status", data={"receipt": receipt})
        assert blocked.status_code == 429 and "Terlalu banyak" in blocked.text
        # Another client still gets its answer: the budget is per client (a hashed address).
        other = TestClient(app, base_url="http://127.0.0.1:8765", client=("192.0.2.9", 1))
        assert other.post("/lapor/status", data={"receipt": receipt}).status_code == 200
    refused = [a.detail for a in world.audit("refused")]
    assert [r["attempt"] for r in refused] == ["receipt"] * 3
    assert all(set(r) == {"attempt", "error", "via"} for r in refused)  # no source, no receipt


def test_the_webhook_needs_its_signature_and_answers_a_working_receipt(web_settings, clock, world):
    with _app_client(web_settings, clock) as off:
        body = json.dumps({"what": "x"}).encode()
        assert off.post("/api/reports", content=body).status_code == 404
    secret = "webhook-test-secret"
    with _app_client(web_settings, clock, report_webhook_secret=SecretStr(secret)) as client:
        body = json.dumps({"what": "Laporan lewat SAPA 129", "danger_now": True}).encode()
        forged = client.post("/api/reports", content=body, headers=_signed("guess", body))
        assert forged.status_code == 401 and "X-Rujukan-Signature" in forged.json()["message"]
        bad = json.dumps({"what": "x", "people": "many"}).encode()
        refused = client.post("/api/reports", content=bad, headers=_signed(secret, bad))
        assert refused.status_code == 400 and "many" not in refused.text
        filed = client.post("/api/reports", content=body, headers=_signed(secret, body))
        assert filed.status_code == 201
        answer = filed.json()
        status = client.post("/lapor/status", data={"receipt": answer["receipt"]})
        assert status.status_code == 200 and "menunggu ditelaah" in status.text
    with Session(world.engine) as session:
        report = session.exec(select(PublicReport)).one()
        assert report.channel.value == "webhook" and report.danger_now
        assert session.get(Referral, report.referral_id).reference == answer["reference"]
    assert [a.detail["attempt"] for a in world.audit("refused")] == ["report-webhook"]


def _sign_in(client, world) -> None:
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    client.post("/signin", data={"csrf": csrf_of(client.get("/signin").text), "token": token})


def _reference(world) -> str:
    with Session(world.engine) as session:
        report = session.exec(select(PublicReport).order_by(PublicReport.id.desc())).first()
        return session.get(Referral, report.referral_id).reference


def test_coordinators_triage_on_their_pages(client, world):
    receipt = _receipt(
        client.post(
            "/lapor",
            data={
                "what": CANARY,
                "at_risk": "children",
                "contact": CONTACT,
                "contact_wanted": "yes",
            },
        ).text  # fmt: skip
    )
    reference = _reference(world)
    assert client.get(f"/reports/{reference}").status_code == 303  # sign-in first
    _sign_in(client, world)
    listed = client.get("/coordinator/reports")
    assert reference in listed.text and CANARY not in listed.text  # the list shows codes only
    page = client.get(f"/reports/{reference}")
    assert CANARY in page.text and CONTACT in page.text
    assert world.audit("report-viewed")[-1].actor == "coordinator:coordinator-1"
    csrf = csrf_of(page.text)
    asked = client.post(
        f"/reports/{reference}/ask", data={"csrf": csrf, "question": "Berapa orang anak?"}
    )
    assert asked.status_code == 303
    assert "Berapa orang anak?" in client.get(f"/reports/{reference}").text
    forwarded = client.post(
        f"/reports/{reference}/forward", data={"csrf": csrf, "agency": "polres-ppa"}
    )
    assert forwarded.status_code == 303
    steps = world.steps(world_referral(world, reference))
    # The police unit's link opens its step with the report, never the reporter's contact.
    agency = TestClient(client.app, base_url="http://127.0.0.1:8765", follow_redirects=True)
    verify = agency.get("/s/" + world.link("polres-ppa", steps["verifikasi"].id))
    assert verify.status_code == 200 and CANARY in verify.text and CONTACT not in verify.text
    intake = client.get(f"/coordinator/intake?report={reference}")
    assert f'name="report" value="{reference}"' in intake.text
    assert (
        'name="pathway" value="tppo-anak"' in intake.text
    )  # children at risk: the form opens on it
    launched = client.post(
        "/coordinator/intake",
        data={
            "csrf": csrf,
            "report": reference,
            "pathway": "tppo-dewasa",
            "name": "Rina Contoh",
            "sex": "F",
            "birth_year": "1999",
            "nationality": "ID",
            "override": "1",
            "override_reason": "found at the port, consent recorded on paper",
        },
    )
    assert launched.status_code == 303, launched.text
    closed = client.post(f"/reports/{reference}/close", data={"csrf": csrf, "reason": "duplicate"})
    assert closed.headers["location"].endswith("done=already")  # launching closed it already
    status = client.post("/lapor/status", data={"receipt": receipt})
    assert "mendapat pertolongan" in status.text
    assert world.audit("report-launched")


def world_referral(world, reference: str) -> Referral:
    with Session(world.engine) as session:
        return session.exec(select(Referral).where(Referral.reference == reference)).one()
