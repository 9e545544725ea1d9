"""An agency sees the person's facts only while its step is open; refusals reveal nothing.

Walks every status a step can be in, for its own agency, another agency and a coordinator, on
the API, the step page and the inbox listing (issue: facts shown for steps that are not, or
never were, an agency's; a 403 that named another agency's step).
"""

from __future__ import annotations

import re
from functools import partial

import pytest

from models.access import GrantKind
from models.actions import (
    Actor,
    accept_step,
    cancel_step,
    complete_step,
    decline_step,
    load_step,
    reroute_step,
)
from models.database import transaction
from tests.web.conftest import bearer

NAME, PHONE = "Siti Contoh", "+62 812 0000 0000"
COORDINATOR = Actor("coordinator", "coordinator-1")


def act(world, reference, key, agency, fn, **kwargs):
    """One engine action on the step named as the CLI names it."""
    with transaction(world.engine) as session:
        row = load_step(session=session, reference=reference, step_ref=key, agency=agency)
        actor = Actor("agency", "focal", agency) if agency else COORDINATOR
        return fn(session=session, step=row, actor=actor, now=world.clock.now, **kwargs)


def walk_to_legal_aid(world, reference):
    """Identification, health, shelter and psychosocial done: legal aid (lbh) is next."""
    for key, agency in [
        ("identifikasi", "polres-ppa"),
        ("kesehatan", "dinkes"),
        ("rumah-aman", "dinsos"),
        ("psikososial", "psikolog"),
    ]:
        act(world, reference, key, agency, accept_step)
        act(world, reference, key, agency, complete_step, outcome="served", catalog=world.catalog)


def scenario(world, intake_data, status):
    """A referral whose legal-aid step (lbh; it may see name and phone) is in `status`."""
    if status == "skipped":
        intake_data["case"] = {"wants_prosecution": False}
    reference = world.launch(intake_data).reference
    legal = partial(act, world, reference, "bantuan-hukum")
    if status in ("pending", "cancelled-before-ready"):
        if status == "cancelled-before-ready":
            legal(None, cancel_step, reason="not-needed", catalog=world.catalog)
        return reference
    walk_to_legal_aid(world, reference)
    if status in ("accepted", "completed"):
        legal("lbh", accept_step)
    if status == "completed":
        legal("lbh", complete_step, outcome="served", catalog=world.catalog)
    if status in ("declined", "rerouted-away"):
        legal("lbh", decline_step, reason="no-capacity")
    if status == "rerouted-away":
        legal(None, reroute_step, to_agency="ngo", catalog=world.catalog)
    if status == "cancelled-after-ready":
        legal(None, cancel_step, reason="handled-elsewhere", catalog=world.catalog)
    return reference


# status -> what its own agency gets: facts (open), record (held once, no facts), refused (403)
EXPECTED = {
    "pending": "refused",
    "ready": "facts",
    "accepted": "facts",
    "completed": "record",
    "declined": "record",
    "rerouted-away": "record",
    "skipped": "refused",
    "cancelled-before-ready": "refused",
    "cancelled-after-ready": "record",
}


def lbh_step_id(world, reference):
    with transaction(world.engine) as session:
        return load_step(session=session, reference=reference, step_ref="bantuan-hukum#1").id


@pytest.mark.parametrize("status", list(EXPECTED))
def test_the_api_shows_facts_only_for_open_steps(client, world, intake_data, status):
    reference = scenario(world, intake_data, status)
    step_id = lbh_step_id(world, reference)
    url = f"/api/referrals/{reference}/steps/{step_id}"
    refusals_before = len(world.audit("refused"))

    own = client.get(url, headers=bearer(world.grant(GrantKind.agency, "lbh", "Rina")))
    expected = EXPECTED[status]
    if expected == "refused":
        assert own.status_code == 403
        assert len(world.audit("refused")) == refusals_before + 1  # a refused view is audited
    else:
        assert own.status_code == 200, own.text
        facts = own.json()["facts"]
        if expected == "facts":
            assert facts["name"] == NAME and facts["phone"] == PHONE
        else:
            assert facts is None  # what the agency recorded, never the person
    if expected != "facts":
        assert NAME not in own.text and PHONE not in own.text

    # Another agency gets the answer of a step that does not exist, naming nothing of it.
    other = client.get(url, headers=bearer(world.grant(GrantKind.agency, "dinsos", "Budi")))
    assert other.status_code == 404
    assert "bantuan-hukum" not in other.text and "lbh" not in other.text
    missing = client.get(
        f"/api/referrals/{reference}/steps/999999",
        headers=bearer(world.grant(GrantKind.agency, "dinsos", "Budi")),
    )
    assert missing.status_code == 404
    same = [re.sub(r"#\d+", "#N", r.json()["message"]) for r in (other, missing)]
    assert same[0] == same[1]

    coordinator = client.get(
        url, headers=bearer(world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1"))
    )
    assert coordinator.status_code == 200

    inbox = client.get("/api/inbox", headers=bearer(world.grant(GrantKind.agency, "lbh", "Rina")))
    listed = {row["id"] for row in inbox.json()}
    assert (step_id in listed) == (expected == "facts")
    assert NAME not in inbox.text and PHONE not in inbox.text


@pytest.mark.parametrize("status", ["ready", "completed", "pending", "rerouted-away"])
def test_the_step_page_follows_the_same_rule(client, world, intake_data, status):
    reference = scenario(world, intake_data, status)
    step_id = lbh_step_id(world, reference)
    assert client.get(f"/s/{world.link('lbh', None)}").status_code == 303  # an inbox link
    page = client.get(f"/referrals/{reference}/steps/{step_id}")
    expected = EXPECTED[status]
    if expected == "refused":
        assert page.status_code == 403
    else:
        assert page.status_code == 200
        assert (NAME in page.text) == (expected == "facts")
        assert (PHONE in page.text) == (expected == "facts")
        closed_words = "hanya ditampilkan selama tugas ini terbuka"
        assert (closed_words in page.text) == (expected == "record")
    # The referral's address sends the agency to a step it holds, or its inbox: never a 403 page.
    landing = client.get(f"/referrals/{reference}")
    assert landing.status_code == 303
    assert landing.headers["location"] in (f"/referrals/{reference}/steps/{step_id}", "/inbox")
