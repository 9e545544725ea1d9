"""Floods and oversized bodies: bounded audit rows, 429 before any work, 413 before any read."""

from __future__ import annotations

import statistics
import time

import pytest
from fastapi.testclient import TestClient

from models.access import GrantKind
from tests.web.conftest import bearer
from web.app import create_app
from web.limits import DEFAULT_BODY_LIMIT

JUNK = "rjk_" + "x" * 43


def junk_requests(client: TestClient, reference: str, step_id: int, rounds: int) -> list[int]:
    """The kinds of refused credentials, in turn: API token, link token, sign-in, link, CSRF."""
    codes = []
    kinds = [
        lambda: client.get("/api/inbox", headers=bearer(JUNK)),
        lambda: client.post(
            f"/api/referrals/{reference}/steps/{step_id}/accept",
            headers=bearer("not.a-link"),
            json={"officer": "x"},
        ),
        lambda: client.post("/signin", data={"token": JUNK, "csrf": "forged"}),
        lambda: client.get("/s/eyJhIjoicG9scmVzLXBwYSJ9.Zm9yZ2Vk"),
        lambda: client.post("/signout", data={"csrf": "forged"}),
    ]
    for n in range(rounds):
        codes.append(kinds[n % len(kinds)]().status_code)
    return codes


def test_a_thousand_refused_credentials_leave_a_bounded_audit_trail(
    web_settings, clock, world, referral
):
    step_id = world.steps(referral)["identifikasi"].id
    real_token = world.grant(GrantKind.agency, "polres-ppa", "Ani")
    app = create_app(web_settings, clock=clock)
    with (
        TestClient(app, client=("203.0.113.9", 4000), follow_redirects=False) as attacker,
        TestClient(app, client=("198.51.100.7", 5000), follow_redirects=False) as office,
    ):
        before = len(world.audit("refused"))
        assert office.get(f"/s/{world.link('polres-ppa', None)}").status_code == 303
        alone = [_timed(lambda: office.get("/inbox")) for _ in range(20)]
        codes = junk_requests(attacker, referral.reference, step_id, 1000)
        during = []
        for _ in range(20):  # the office keeps working while the attacker is refused
            codes += junk_requests(attacker, referral.reference, step_id, 10)
            during.append(_timed(lambda: office.get("/inbox")))
        assert office.get("/inbox").status_code == 200
        assert office.get("/api/inbox", headers=bearer(real_token)).status_code == 200
        written = len(world.audit("refused")) - before
    print(
        f"\n1,200 refused requests: {codes.count(429)} answered 429 before any work; "
        f"{written} audit rows; a real page {statistics.median(alone) * 1000:.1f} ms alone, "
        f"{statistics.median(during) * 1000:.1f} ms during the flood (median of 20)"
    )
    assert codes.count(429) >= 1000  # the budget is 20 a minute: the rest never reach the app
    # The client's budget (20) bounds the refusals that reach the app; of those, five of each
    # kind are audited one by one and the rest as one entry with their count.
    assert written <= 20 + 5
    repeats = [a for a in world.audit("refused") if a.detail.get("count")]
    assert repeats and all(a.actor == "anonymous" for a in repeats)  # counted, at shutdown


def _timed(request) -> float:
    started = time.perf_counter()
    assert request().status_code == 200
    return time.perf_counter() - started


def test_the_budget_is_per_client_and_overall(web_settings, clock, world, referral):
    small = web_settings.model_copy(update={"refusals_overall": "30/minute"})
    app = create_app(small, clock=clock)
    refused = []
    for n in range(40):  # 40 clients, one refusal each: the overall budget runs out at 30
        with TestClient(app, client=(f"192.0.2.{n}", 1000), follow_redirects=False) as client:
            refused.append(client.get("/api/inbox", headers=bearer(JUNK)).status_code)
    assert refused[:30] == [401] * 30 and set(refused[30:]) == {429}
    with TestClient(app, client=("192.0.2.200", 1000), follow_redirects=False) as fresh:
        # A signed-in person (a valid signed session, checked without the database) still gets in.
        assert fresh.get(f"/s/{world.link('polres-ppa', None)}").status_code == 303
        assert fresh.get("/inbox").status_code == 200


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/api/referrals", 64 * 1024), ("/api/referrals/RJK-AAAA-AA/steps/1/decline", 16 * 1024)],
)
def test_oversized_bodies_are_refused_before_they_are_read(client, world, path, limit):
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    # Announced too large: 413 from the length alone.
    declared = client.post(
        path, headers={**bearer(token), "content-length": str(200 * 1024 * 1024)}, content=b"{}"
    )
    assert declared.status_code == 413 and "KiB" in declared.json()["message"]
    # Streamed without a length (chunked): 413 once the count passes the limit.
    chunks = (b" " * 4096 for _ in range(limit // 4096 + 2))
    streamed = client.post(path, headers=bearer(token), content=chunks)
    assert streamed.status_code == 413
    # Under the limit, the request goes on to the app (and its own checks).
    assert client.post(path, headers=bearer(token), json={}).status_code in (400, 403, 404)


def test_an_api_write_without_a_token_is_refused_before_its_body_is_read(client):
    huge = (b"x" * 65536 for _ in range(10))
    answer = client.post("/api/referrals", content=huge)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_page_forms_have_a_limit_too(client):
    answer = client.post("/signin", content=b"token=" + b"x" * (DEFAULT_BODY_LIMIT + 1))
    assert answer.status_code == 413
