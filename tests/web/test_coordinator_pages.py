"""The coordinator's pages tell what happened: what agencies said, where a step went, the trail."""

from __future__ import annotations

import html
import re
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.access import GrantKind
from models.actions import SYSTEM, accept_step, complete_step
from models.database import transaction
from models.step import Step
from tests.web.test_pages import csrf_of, open_link


def _finish_identification(world, referral) -> None:
    """The police unit accepts and completes identification: health and shelter become ready."""
    with transaction(world.engine) as session:
        step = session.get(Step, world.steps(referral)["identifikasi"].id)
        accept_step(session=session, step=step, actor=SYSTEM, now=world.clock.now)
        complete_step(
            session=session,
            step=step,
            outcome="served",
            actor=SYSTEM,
            now=world.clock.now,
            catalog=world.catalog,
        )


def _act(client, world, agency: str, step_id: int, action: str, data: dict) -> None:
    """An agency acts from the link in its message, as its focal point does."""
    client.cookies.clear()
    url = open_link(client, world.link(agency, step_id)).headers["location"]
    page = client.get(url)
    answer = client.post(
        f"{url}/{action}", data={"csrf": csrf_of(page.text), "officer": "Bu Ratna", **data}
    )
    assert answer.status_code == 303, answer.text


def _sign_in_coordinator(client, world) -> None:
    client.cookies.clear()
    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    client.post("/signin", data={"csrf": csrf_of(client.get("/signin").text), "token": token})


def _step_item(page: str, step_id: int) -> str:
    """The timeline's item of one step."""
    match = re.search(rf'<li id="step-{step_id}".*?</li>\s*(?=<li id="step-|</ol>)', page, re.S)
    assert match, f"the timeline has no item for step {step_id}"
    return html.unescape(match.group(0))


def test_the_timeline_shows_what_agencies_said_beside_their_steps(client, world, referral):
    _finish_identification(world, referral)
    steps = world.steps(referral)
    health, shelter = steps["kesehatan"], steps["rumah-aman"]
    _act(
        client, world, "dinkes", health.id, "decline",
        {"reason": "no-capacity", "note": "Poli penuh sampai Senin"},
    )  # fmt: skip
    _act(
        client, world, "dinsos", shelter.id, "request-extension",
        {"reason": "waiting-for-documents", "until_date": "2026-12-10", "until_time": "15:00"},
    )  # fmt: skip

    _sign_in_coordinator(client, world)
    page = client.get(f"/referrals/{referral.reference}").text
    declined = _step_item(page, health.id)
    assert "Tidak ada kapasitas" in declined and "Poli penuh sampai Senin" in declined
    assert "Bu Ratna · Dinas Kesehatan / RSUD / Puskesmas" in declined  # who, by name
    asked = _step_item(page, shelter.id)
    assert "Menunggu dokumen" in asked and "2026-12-10 15:00 WIB" in asked
    # reading the note beside the step is a view of personal data, and audited as one
    assert world.audit("notes-viewed")[-1].actor == "coordinator:coordinator-1"

    # the trail speaks the page's language: labels and names, never key=value codes
    trail = html.unescape(page.split('class="audit"')[1])
    assert "Tidak ada kapasitas" in trail and "Terlayani" in trail
    assert not re.search(r"\b(reason|outcome|consent_override|new_step_id)=", trail)
    assert "agency:" not in trail and "Pemeriksaan dan rehabilitasi kesehatan" in trail
    client.get("/lang/en?next=/")
    english = html.unescape(client.get(f"/referrals/{referral.reference}").text)
    assert "No capacity" in english.split('class="audit"')[1]


def test_reroute_offers_stand_ins_first_and_says_where_the_step_went(client, world, referral):
    _finish_identification(world, referral)
    health = world.steps(referral)["kesehatan"]
    _act(client, world, "dinkes", health.id, "decline", {"reason": "no-capacity"})

    _sign_in_coordinator(client, world)
    page = client.get(f"/referrals/{referral.reference}").text
    item = _step_item(page, health.id)
    suggested = re.search(
        r'<optgroup label="Dapat mengambil alih layanan ini">(.*?)</optgroup>', item, re.S
    )
    assert suggested, "no agency is suggested for the health step"
    offered = re.findall(r'value="([a-z0-9-]+)"', suggested.group(1))
    assert offered == [a.slug for a in world.catalog.directory.stand_ins("dinkes")]
    assert "ngo" in offered and "polres-ppa" not in offered and "imigrasi" not in offered

    answer = client.post(
        f"/referrals/{referral.reference}/steps/{health.id}/reroute",
        data={"csrf": csrf_of(page), "to": "ngo"},
    )
    assert answer.status_code == 303
    moved = client.get(answer.headers["location"]).text
    new = world.steps(referral)["kesehatan"]
    assert new.id != health.id and new.agency == "ngo"
    due = new.due_at.astimezone(ZoneInfo("Asia/Jakarta"))
    confirmation = html.unescape(re.search(r'role="status">(.*?)</p>', moved, re.S).group(1))
    assert "Yayasan anti-perdagangan orang (LSM lokal)" in confirmation
    assert f"{due:%Y-%m-%d %H:%M} WIB" in confirmation
    # the new instance stands right after the one it replaces, and says so
    ids = [int(i) for i in re.findall(r'<li id="step-(\d+)"', moved)]
    assert ids.index(new.id) == ids.index(health.id) + 1
    assert "menggantikan tugas yang ditolak oleh Dinas Kesehatan" in _step_item(moved, new.id)


def test_the_referral_list_labels_its_counters_and_shows_escalation(client, world, referral):
    from models.sweep import sweep

    _sign_in_coordinator(client, world)
    with Session(world.engine) as session:
        total = len(session.exec(select(Step).where(Step.referral_id == referral.id)).all())
    listing = html.unescape(client.get("/coordinator").text)
    assert f"0 dari {total} tugas selesai" in listing
    world.clock.advance(days=3)  # identification (24 h) is overdue, then escalated
    for _ in range(2):  # one pass finds it overdue, the next escalates it
        with transaction(world.engine) as session:
            sweep(session, catalog=world.catalog, now=world.clock.now)
    _sign_in_coordinator(client, world)  # the morning's session has ended meanwhile
    listing = html.unescape(client.get("/coordinator").text)
    assert "1 terlambat" in listing and "1 dieskalasi" in listing


def test_a_field_error_on_the_indonesian_form_names_the_field_in_indonesian(client, world):
    _sign_in_coordinator(client, world)
    form = client.get("/coordinator/intake?pathway=tppo-dewasa").text
    base = {
        "csrf": csrf_of(form),
        "pathway": "tppo-dewasa",
        "name": "Rina Contoh",
        "sex": "F",
        "nationality": "ID",
        "consent": sorted(world.catalog.pathways["tppo-dewasa"].agencies()),
        "consent_given": "1",
    }
    wrong = client.post("/coordinator/intake", data={**base, "birth_year": "1850"})
    alert = html.unescape(wrong.text.split('role="alert">')[1].split("</p>")[0])
    assert wrong.status_code == 400
    assert alert.startswith("Isian \u201cTahun lahir\u201d belum benar: tulis tahun empat angka")
    assert "1850" not in alert and "person." not in alert  # never the value, never a code path
    client.get("/lang/en?next=/")
    english = client.post("/coordinator/intake", data={**base, "birth_year": "1850"})
    assert "person.birth_year" in english.text  # the engine's own words in English
