"""The web's errors never repeat what was typed either: the API's intake and action bodies, the
intake form (issue 10, finding 7, on the paths of the web; the CLI's are in test_error_echo.py)."""

from __future__ import annotations

import copy
import json

import pytest

from models.access import GrantKind
from models.settings import PROJECT_ROOT
from tests.web.conftest import bearer

NAME, PHONE = "Siti Rahasia", "0812-9431-7789"
MARKS = ("rahasia", "9431-7789")
EXAMPLE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
CANARY_KEY = f"{NAME} {PHONE}"


def leaks(*texts: str) -> list[str]:
    joined = " ".join(texts).lower()
    return [mark for mark in MARKS if mark in joined]


def intakes() -> list[tuple[str, dict]]:
    """Intakes with the canary as an extra key at every level, and as wrong values."""
    cases = []
    for where in (None, "person", "consent", "case"):
        data = copy.deepcopy(EXAMPLE)
        (data if where is None else data.setdefault(where, {}))[CANARY_KEY] = PHONE
        cases.append((f"extra key in {where or 'intake'}", data))
    for field, value in [
        ("sex", NAME),
        ("birth_year", PHONE),
        ("nationality", NAME),
        ("languages", [NAME]),
        ("phone", {CANARY_KEY: 1}),
    ]:
        data = copy.deepcopy(EXAMPLE)
        data["person"][field] = value
        cases.append((f"wrong {field}", data))
    for field, value in [("pathway", NAME), ("urgency", PHONE)]:
        data = copy.deepcopy(EXAMPLE)
        data[field] = value
        cases.append((f"wrong {field}", data))
    data = copy.deepcopy(EXAMPLE)
    data["consent"]["agencies"] = [NAME.lower().replace(" ", "-")]
    cases.append(("a name as an agency", data))
    return cases


@pytest.mark.parametrize(("case", "intake"), intakes(), ids=[c for c, _ in intakes()])
def test_a_refused_intake_on_the_api_repeats_nothing(client, world, case, intake):
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    answer = client.post("/api/referrals", headers=bearer(token), json=intake)
    assert answer.status_code == 400, (case, answer.text)
    assert leaks(answer.text) == []
    assert leaks(*(json.dumps(a.detail) + a.actor for a in world.audit())) == []


def test_an_extra_key_in_an_action_body_is_not_repeated(client, world, referral):
    token = world.grant(GrantKind.agency, "polres-ppa", "Ani")
    step = world.steps(referral)["identifikasi"]
    url = f"/api/referrals/{referral.reference}/steps/{step.id}"
    for action, body in [
        ("accept", {CANARY_KEY: PHONE}),
        ("decline", {"reason": NAME, "note": "ok"}),
        ("complete", {"outcome": PHONE}),
        ("request-extension", {"reason": "other", "until": NAME}),
    ]:
        answer = client.post(f"{url}/{action}", headers=bearer(token), json=body)
        assert answer.status_code in (400, 409), (action, answer.text)
        assert leaks(answer.text) == [], action
    assert leaks(*(json.dumps(a.detail) + a.actor for a in world.audit())) == []
