"""A member of the public reports from a phone, keeps the receipt, reads and answers a question.

Chromium sends a distinctive forwarded-for address (uvicorn trusts it from 127.0.0.1, as behind
a proxy) and user agent; neither, nor the report's canary text, may reach the case database
file, the access log, the outbox or the messages the agencies receive.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, select

from models.access import GrantKind, issue_grant
from models.catalog import load_catalog
from models.database import transaction
from models.public_report import PublicReport
from tests.web.test_browser import (  # noqa: F401 (the fixtures and marks of the browser tests)
    SHOTS,
    browser,
    inbox,
    pytestmark,
    shot,
    site,
)

ADDRESS = "203.0.113.77"
AGENT = "CanaryPhone/7.7 (reporter-agent)"
CANARY = "KANARI-LAPOR-4471 dijanjikan kerja di Malaysia"
CONTACT = "0812-7777-4471"


def test_a_reporter_files_follows_up_answers_and_leaves_no_trace(site, inbox, browser):  # noqa: F811
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        locale="id-ID",
        user_agent=AGENT,
        extra_http_headers={"X-Forwarded-For": ADDRESS},
    )
    page = context.new_page()
    started = time.monotonic()
    page.goto(site.url + "/lapor")
    assert page.get_by_role("link", name=re.compile("Keluar cepat")).is_visible()
    shot(page, "lapor-form")
    page.screenshot(path=str(SHOTS / "lapor-phone.png"))  # the first screen, as on a phone

    page.get_by_label("Apa yang terjadi?").fill(CANARY)
    page.get_by_label("Di mana?").fill("Desa Pondok Kelapa, dekat pelabuhan")
    page.get_by_label("Berapa orang").fill("3")
    page.get_by_label("Anak-anak", exact=True).check()
    page.get_by_label("Ada orang dalam bahaya sekarang").check()
    page.get_by_label("Saya bersedia dihubungi kembali").check()
    page.get_by_label("Cara menghubungi Anda").fill(CONTACT)
    page.get_by_role("button", name="Kirim laporan").click()
    receipt = page.locator("#receipt").inner_text().strip()
    assert re.fullmatch(r"(\d{4} ){4}\d{4}", receipt)
    assert time.monotonic() - started < 120  # well under two minutes, typing included
    shot(page, "lapor-receipt")

    # The coordinators hear at once: reference and deadline only; the task force too (danger).
    coordinator = inbox.wait_for("uptd-ppa")[0]
    task_force = inbox.wait_for("gugus-tugas")[0]
    reference = re.search(r"RJK-[0-9A-Z]{4}-[0-9A-Z]{2}", coordinator["title"]).group(0)
    assert "DARURAT" in coordinator["title"] and reference in task_force["title"]

    page.goto(site.url + "/lapor")
    page.get_by_label("Nomor tanda terima").fill(receipt)
    page.get_by_role("button", name="Lihat status").click()
    assert "menunggu ditelaah" in page.locator("#state").inner_text()

    # A coordinator signs in, reads the report and asks a question on the report's page.
    with transaction(site.engine) as session:
        _, token = issue_grant(
            session, kind=GrantKind.coordinator, agency="uptd-ppa", holder="rina",
            issued_by="operator:test", now=datetime.now(UTC), catalog=load_catalog(site.settings),
        )  # fmt: skip
    desk = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    office = desk.new_page()
    office.goto(site.url + "/signin")
    office.get_by_label("Token akses").fill(token)
    office.get_by_role("button", name="Masuk").click()
    office.goto(site.url + "/coordinator/reports")
    assert reference in office.content() and CANARY not in office.content()
    shot(office, "reports-list")
    office.get_by_role("link", name=re.compile(reference)).click()
    assert CANARY in office.content() and CONTACT in office.content()
    office.get_by_label("Pertanyaan kepada pelapor").fill(
        "Apakah anak-anak itu masih di rumah dekat pelabuhan?"
    )
    office.get_by_role("button", name="Kirim pertanyaan").click()
    assert "Tersimpan" in office.content()
    shot(office, "report-page")
    desk.close()

    page.goto(site.url + "/lapor?lang=en")
    page.get_by_label("Receipt number").fill(receipt.replace(" ", ""))
    page.get_by_role("button", name="See the status").click()
    assert "question for you" in page.locator("#state").inner_text()
    assert "masih di rumah dekat pelabuhan" in page.content()
    page.get_by_label("Your answer").fill("Ya, sejak kemarin malam.")
    page.get_by_role("button", name="Send the answer").click()
    assert "Your answer has been sent" in page.content()
    assert "sejak kemarin malam" in page.content()
    shot(page, "lapor-status")

    # Quick exit: one tap to a neutral site (answered here, the machine has no internet).
    exit_url = site.settings.quick_exit_url
    page.route(exit_url + "**", lambda route: route.fulfill(body="<h1>Cuaca</h1>"))
    page.get_by_role("link", name=re.compile("Quick exit")).click()
    page.wait_for_url(exit_url + "**")
    assert context.cookies() == []  # no cookie, ever
    context.close()

    # Nothing of the reporter anywhere: the database file, the access log, outbox, messages.
    with Session(site.engine) as session:
        report = session.exec(select(PublicReport)).one()
        assert CANARY not in report.sealed and CONTACT not in report.sealed
    database = site.settings.resolved_database_url.removeprefix("sqlite:///")
    stored = b"".join(
        Path(name).read_bytes() for name in (database, database + "-wal") if Path(name).exists()
    )
    logged = "".join(site.access_log)
    received = repr(inbox.messages)
    assert "/lapor" in logged
    for secret in (ADDRESS, AGENT, "CanaryPhone", CANARY, "KANARI", CONTACT):
        assert secret.encode() not in stored, secret
        assert secret not in logged, secret
        assert secret not in received, secret
    assert not any(line for line in site.access_log if "/lapor" in line and "127.0.0.1" in line), (
        "the access log wrote a reporter's address"
    )
