"""What an agency's pages say after it acts: only what the record bears out."""

from __future__ import annotations

import re
from datetime import timedelta

from models.actions import Actor, accept_step, complete_step
from models.database import transaction
from models.settings import PROJECT_ROOT
from models.step import Step, StepStatus


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the page has no CSRF field"
    return match.group(1)


def text_of(page: str) -> str:
    """The page's words without tags, as a reader sees them."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def open_step(client, world, agency: str, step_id: int) -> str:
    return client.get(f"/s/{world.link(agency, step_id)}").headers["location"]


def finish(world, step_id: int, agency: str) -> None:
    """An agency completes a step through the engine (the part of the path not under test)."""
    actor = Actor("agency", "budi", agency)
    with transaction(world.engine) as session:
        step = session.get(Step, step_id)
        accept_step(session=session, step=step, actor=actor, now=world.clock.now)
        complete_step(
            session=session,
            step=step,
            outcome="served",
            actor=actor,
            now=world.clock.now,
            catalog=world.catalog,
        )


def test_a_completion_says_who_was_told_or_what_the_next_step_waits_for(client, world, referral):
    steps = world.steps(referral)
    finish(world, steps["identifikasi"].id, "polres-ppa")
    shelter = steps["rumah-aman"].id
    url = open_step(client, world, "dinsos", shelter)
    csrf = csrf_of(client.get(url).text)

    accepted = client.post(f"{url}/accept", data={"csrf": csrf, "officer": "Bu Ratna"})
    page = text_of(client.get(accepted.headers["location"]).text)
    assert "Tugas diterima" in page and "Tidak ada pesan yang dikirim" in page

    done = client.post(f"{url}/complete", data={"csrf": csrf, "outcome": "served"})
    assert done.headers["location"].endswith("done=completed")
    page = text_of(client.get(done.headers["location"]).text)
    assert "Tugas selesai" in page
    assert "Instansi berikutnya sudah diberi tahu" not in page
    # The next step (psychology) waits for health; both agencies hide their step titles.
    assert "masih menunggu tugas Dinas Kesehatan / RSUD / Puskesmas" in page
    assert "Belum ada instansi lain yang diberi tahu" in page
    assert "Pemeriksaan dan rehabilitasi" not in page and "Asesmen" not in page

    # Health completes: now the psychologist is told of its step, by name.
    health = steps["kesehatan"].id
    finish(world, health, "dinkes")
    assert world.step(health).status == StepStatus.completed
    url = open_step(client, world, "dinkes", health)
    page = text_of(client.get(f"{url}?done=completed").text)
    assert "Tugas berikutnya sudah siap dan instansinya diberi tahu" in page
    told = r"Psikolog \(melalui UPTD PPA\) ?: tugas baru · pesan (sedang dikirim|terkirim)"
    assert re.search(told, page)
    assert "Asesmen" not in page and "masih menunggu" not in page


def test_the_address_cannot_make_the_page_claim_an_action(client, world, referral):
    ident = world.steps(referral)["identifikasi"].id
    url = open_step(client, world, "polres-ppa", ident)
    for done in ("completed", "declined", "extension", "accepted"):
        page = client.get(f"{url}?done={done}").text
        assert 'role="status"' not in page, done
    csrf = csrf_of(client.get(url).text)
    declined = client.post(
        f"{url}/decline", data={"csrf": csrf, "officer": "Ani", "reason": "no-capacity"}
    )
    page = text_of(client.get(declined.headers["location"]).text)
    assert "Tugas ditolak" in page
    assert "Koordinator (UPTD Perlindungan Perempuan dan Anak) akan mengalihkannya" in page
    assert "UPTD Perlindungan Perempuan dan Anak" in page.split("mengalihkannya", 1)[1]


def test_the_inbox_of_a_step_link_says_what_it_opens_and_how_to_see_every_step(
    client, world, referral, intake_data
):
    finish(world, world.steps(referral)["identifikasi"].id, "polres-ppa")
    other = world.launch(intake_data)
    finish(world, world.steps(other)["identifikasi"].id, "polres-ppa")
    shelter = world.steps(referral)["rumah-aman"].id
    open_step(client, world, "dinsos", shelter)
    page = text_of(client.get("/inbox").text)
    assert "Tugas dari tautan Anda" in page and "Penempatan di rumah aman" in page
    assert referral.reference in page and other.reference not in page  # the link's step only
    assert "masuk dengan token akses pribadi" in page

    finish(world, shelter, "dinsos")
    page = text_of(client.get("/inbox").text)
    assert "Tidak ada tugas terbuka" not in page
    assert "Tugas dari tautan ini tidak ada yang terbuka lagi" in page
    assert "Penempatan di rumah aman" in page and "Selesai" in page  # the step, with its state
    assert 'href="/signin?next=/inbox"' in client.get("/inbox").text


def test_a_link_session_asks_the_officer_once_and_records_the_name(client, world, referral):
    ident = world.steps(referral)["identifikasi"].id
    url = open_step(client, world, "polres-ppa", ident)
    page = client.get(url).text
    assert "Nama petugas (wajib)" in page and "Nama petugas (tidak wajib)" not in page
    csrf = csrf_of(page)
    nameless = client.post(f"{url}/accept", data={"csrf": csrf})
    assert nameless.status_code == 400
    assert "Tulis nama Anda (petugas yang bertindak)" in nameless.text  # in the page's language
    assert "write your name" not in nameless.text
    bad = client.post(f"{url}/accept", data={"csrf": csrf, "officer": "Ani\n<b>"})
    assert bad.status_code == 400 and "Nama petugas harus 1-60 huruf" in bad.text
    assert world.step(ident).status == StepStatus.ready

    client.post(f"{url}/accept", data={"csrf": csrf, "officer": "Bu Ratna"})
    page = client.get(url).text
    # Asked once: the complete form has no name field; the page says who acts, with a change.
    assert 'name="officer"' in page and 'id="officer-complete"' not in page
    assert "Bertindak sebagai: Bu Ratna" in text_of(page)
    changed = client.post("/officer", data={"csrf": csrf, "officer": "Pak Joko", "next": url})
    assert changed.status_code == 303 and changed.headers["location"] == url
    assert "Bertindak sebagai: Pak Joko" in text_of(client.get(url).text)
    client.post(f"{url}/complete", data={"csrf": csrf, "outcome": "served"})
    assert [a.actor for a in world.audit("accepted")] == ["agency:polres-ppa/Bu Ratna"]
    assert [a.actor for a in world.audit("completed")] == ["agency:polres-ppa/Pak Joko"]


def test_a_personal_token_session_is_never_asked_for_a_name(client, world, referral):
    from models.access import GrantKind

    token = world.grant(GrantKind.agency, "polres-ppa", "ani")
    signin = client.get("/signin")
    client.post("/signin", data={"csrf": csrf_of(signin.text), "token": token})
    ident = world.steps(referral)["identifikasi"].id
    url = f"/referrals/{referral.reference}/steps/{ident}"
    page = client.get(url).text
    assert 'name="officer"' not in page and "Bertindak sebagai" not in page
    client.post(f"{url}/accept", data={"csrf": csrf_of(page)})
    assert [a.actor for a in world.audit("accepted")] == ["agency:polres-ppa/ani"]


def test_the_api_needs_the_officer_with_a_link_token(client, world, referral):
    ident = world.steps(referral)["identifikasi"].id
    url = f"/api/referrals/{referral.reference}/steps/{ident}/accept"
    link = {"Authorization": f"Bearer {world.link('polres-ppa', ident)}"}
    nameless = client.post(url, headers=link, json={})
    assert nameless.status_code == 400 and "write your name" in nameless.json()["message"]
    assert client.post(url, headers=link, json={"officer": "Ani"}).status_code == 200
    assert [a.actor for a in world.audit("accepted")] == ["agency:polres-ppa/Ani"]


# What pages must never show: an actor as the audit trail stores it, or a bare language code.
RAW = re.compile(r"\b(agency|coordinator|system):[a-z]|<dd>[a-z]{2,3}(, [a-z]{2,3})*</dd>")


def test_pages_show_people_agencies_and_languages_in_words(client, world, intake_data):
    intake_data["person"]["languages"] = ["id", "jv", "xx"]
    referral = world.launch(intake_data)
    ident = world.steps(referral)["identifikasi"].id
    url = open_step(client, world, "polres-ppa", ident)
    csrf = csrf_of(client.get(url).text)
    client.post(f"{url}/accept", data={"csrf": csrf, "officer": "Bu Ratna"})
    until = (world.clock.now.date() + timedelta(days=5)).isoformat()
    extension = {"csrf": csrf, "reason": "other", "until_date": until, "note": "ok"}
    assert client.post(f"{url}/request-extension", data=extension).status_code == 303
    page = client.get(url).text
    assert not RAW.search(page), RAW.search(page)
    words = text_of(page)
    assert "Bahasa Indonesia, Jawa, bahasa lain (kode xx)" in words
    assert "Bu Ratna · Polres Bengkulu Tengah, Unit PPA · perpanjangan diminta" in words
    english = text_of(client.get("/lang/en", params={"next": url}, follow_redirects=True).text)
    assert "Indonesian, Javanese" in english and "adult (20-29)" in english
    assert "dewasa" not in english

    from models.access import GrantKind

    token = world.grant(GrantKind.coordinator, "uptd-ppa", "coordinator-1")
    client.cookies.clear()
    signin = client.get("/signin")
    client.post("/signin", data={"csrf": csrf_of(signin.text), "token": token})
    person = client.get(f"/referrals/{referral.reference}/person").text
    assert not RAW.search(person), RAW.search(person)
    assert "Identifikasi korban dan keterangan awal · Bu Ratna · Polres" in text_of(person)


def test_messages_say_tugas_not_langkah():
    from notifications.render import MessageContext, render

    context = MessageContext("RJK-TEST-01", "Identifikasi", "2026-12-01 09:00 WIB", "x")
    for template in (PROJECT_ROOT / "templates" / "messages" / "id").glob("*.j2"):
        if template.stem == "digest":  # several messages in one: tests/notifications/test_digest.py
            continue
        message = render(template.stem, "id", context)
        for text in (message.subject, message.text, message.html):
            assert "langkah" not in text.lower(), template.name


def test_the_last_completion_says_the_referral_is_done(client, world, intake_data):
    intake_data["pathway"] = "demo-singkat"
    referral = world.launch(intake_data)
    steps = world.steps(referral)
    finish(world, steps["identifikasi"].id, "polres-ppa")
    finish(world, steps["kesehatan"].id, "dinkes")
    url = open_step(client, world, "dinsos", steps["rumah-aman"].id)
    csrf = csrf_of(client.get(url).text)
    client.post(f"{url}/accept", data={"csrf": csrf, "officer": "Bu Ratna"})
    done = client.post(f"{url}/complete", data={"csrf": csrf, "outcome": "served"})
    page = text_of(client.get(done.headers["location"]).text)
    assert "Semua tugas rujukan ini selesai" in page
    assert re.search(r"Pesan (untuk|terkirim ke) UPTD Perlindungan Perempuan dan Anak", page)
    assert "masih menunggu" not in page


def test_age_groups_read_in_english():
    from models.vocabulary import age_group_label, language_name

    assert age_group_label("anak (<18)", "en") == "child (<18)"
    assert age_group_label("anak (<18)", "id") == "anak (<18)"
    assert age_group_label("dewasa (30-39)", "en") == "adult (30-39)"
    assert language_name("jv", "id") == "Jawa" and language_name("zz", "en").endswith("zz)")
