"""An agency's path on a phone (390x844), through real messages: what each screen says.

Screenshots are saved under test-output/screenshots/agency-*.png.
"""

from __future__ import annotations

from datetime import UTC, datetime

from models.access import GrantKind, issue_grant
from models.catalog import load_catalog
from models.database import transaction
from tests.web.test_browser import (  # noqa: F401 (fixtures)
    browser,
    inbox,
    launch_referral,
    link_in,
    phone,
    pytestmark,
    shot,
    site,
)


def test_an_agency_is_told_the_truth_on_its_phone(site, inbox, browser, intake_data):  # noqa: F811
    intake_data["person"]["languages"] = ["id", "jv"]
    referral = launch_referral(site, intake_data)

    police = phone(browser)
    police.goto(link_in(inbox.wait_for("polres-ppa")[0], site))
    police.locator("#officer-accept").fill("Bu Ratna")
    police.get_by_role("button", name="Terima tugas").click()
    status = police.get_by_role("status").inner_text()
    assert "Tugas diterima" in status and "Tidak ada pesan yang dikirim" in status
    # Asked once: the session now says who acts, and the next form has no name field.
    assert "Bertindak sebagai: Bu Ratna" in police.locator(".acting-as").inner_text()
    assert police.locator("#officer-complete").count() == 0
    assert "Bahasa Indonesia, Jawa" in police.content()
    shot(police, "agency-accepted")
    police.get_by_label("Hasil").select_option("served")
    police.get_by_role("button", name="Selesaikan tugas").click()
    status = police.get_by_role("status").inner_text()
    assert "Tugas selesai" in status and "Dinas Sosial" in status
    assert "Dinas Kesehatan / RSUD / Puskesmas: tugas baru" in status  # its title is hidden
    assert "Pemeriksaan" not in status
    shot(police, "agency-completed-told")

    dinsos = phone(browser)
    dinsos.goto(link_in(inbox.wait_for("dinsos")[0], site))
    dinsos.locator("#officer-accept").fill("Pak Joko")
    dinsos.get_by_role("button", name="Terima tugas").click()
    dinsos.get_by_label("Hasil").select_option("served")
    dinsos.locator("#note-complete").fill("Korban sudah di rumah aman.")
    dinsos.get_by_role("button", name="Selesaikan tugas").click()
    status = dinsos.get_by_role("status").inner_text()
    assert "masih menunggu tugas Dinas Kesehatan / RSUD / Puskesmas" in status
    assert "Belum ada instansi lain yang diberi tahu" in status
    assert "Instansi berikutnya sudah diberi tahu" not in status
    shot(dinsos, "agency-completed-waits")

    dinsos.get_by_role("link", name="Kotak masuk", exact=True).click()
    assert dinsos.get_by_role("heading", name="Tugas dari tautan Anda").is_visible()
    assert "Tidak ada tugas terbuka" not in dinsos.content()
    assert dinsos.get_by_text("Penempatan di rumah aman").is_visible()
    assert dinsos.get_by_role("link", name="Masuk", exact=True).is_visible()
    assert referral.reference in dinsos.content()
    shot(dinsos, "agency-inbox-one-link")

    dinsos.get_by_role("link", name="English").click()
    assert dinsos.get_by_role("heading", name="Steps from your links").is_visible()
    shot(dinsos, "agency-inbox-one-link-en")

    # The coordinator reads the note: the person and the agency, not the audit trail's code.
    with transaction(site.engine) as session:
        _, token = issue_grant(
            session,
            kind=GrantKind.coordinator,
            agency="uptd-ppa",
            holder="coordinator-1",
            issued_by="operator:test",
            now=datetime.now(UTC),
            catalog=load_catalog(site.settings),
        )
    coordinator = phone(browser)
    coordinator.goto(site.url + "/signin")
    coordinator.get_by_label("Token akses").fill(token)
    coordinator.get_by_role("button", name="Masuk").click()
    coordinator.goto(f"{site.url}/referrals/{referral.reference}/person")
    note = coordinator.locator(".notes li").first.inner_text()
    assert "Penempatan di rumah aman · Pak Joko · Dinas Sosial · selesai" in note
    assert "agency:" not in coordinator.content()
    assert "Bahasa Indonesia, Jawa" in coordinator.content()
    shot(coordinator, "agency-note-for-coordinator")
