"""Real browser tests: Debian's Chromium driven by Playwright against uvicorn on a free port.

Messages travel for real: the relay sends them through Apprise to a local json:// receiver, and
the focal point opens the link taken from the message it got.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn
import yaml
from sqlmodel import Session, select

from models.access import GrantKind, issue_grant
from models.actions import launch
from models.catalog import load_catalog
from models.database import engine_for, migrate, transaction
from models.intake import Intake
from models.referral import Referral
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings
from models.step import Step, StepStatus
from tests.network import free_port
from web.access_log import LOG_CONFIG
from web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = PROJECT_ROOT / "test-output" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is not installed at "
        "/usr/bin/chromium (apt-get install chromium); Playwright cannot download one",
    ),
]


@dataclass
class Inbox:
    """A local json:// receiver: every message Apprise posts, by the agency tag in its path."""

    port: int
    messages: list[tuple[str, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, agency: str) -> list[dict]:
        with self.lock:
            return [body for tag, body in self.messages if tag == agency]

    def wait_for(self, agency: str, count: int = 1, timeout: float = 45) -> list[dict]:
        """Wait until `agency` has received `count` messages."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.of(agency)) >= count:
                return self.of(agency)
            time.sleep(0.05)
        raise AssertionError(f"{agency} received {len(self.of(agency))} messages, wanted {count}")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    state = Inbox(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with state.lock:
                state.messages.append((self.path.strip("/"), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Site:
    """The running web app and what the test needs around it."""

    url: str
    settings: Settings
    access_log: list[str]

    @property
    def engine(self):
        return engine_for(self.settings.resolved_database_url)


class _Capture:
    """Collects what uvicorn's access log writes (after our redaction)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def site(settings: Settings, inbox: Inbox, tmp_path: Path) -> Iterator[Site]:
    """uvicorn serving create_app on a free port, configured as `rujukan serve` should do it."""
    port = free_port()
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    migrate(url)
    channels = tmp_path / "channels.yaml"
    directory = load_catalog(settings).directory
    channels.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "urls": [
                    {f"json://127.0.0.1:{inbox.port}/{a.slug}": [{"tag": a.slug}]}
                    for a in directory.agencies
                ],
            }
        )
    )
    web_settings = settings.model_copy(
        update={
            "database_url": url,
            "base_url": f"http://127.0.0.1:{port}",
            "apprise_config": channels,
            "allowed_webhook_hosts": "127.0.0.1",
        }
    )
    capture = _Capture()
    log_config = json.loads(json.dumps(LOG_CONFIG))
    log_config["handlers"]["access"]["stream"] = "ext://sys.stdout"
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(web_settings),
            host="127.0.0.1",
            port=port,
            log_config=log_config,
            access_log=True,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    import logging

    handler = logging.StreamHandler(capture)  # type: ignore[arg-type]
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    # uvicorn configured its loggers at start; listen to the access log as an operator would.
    access = logging.getLogger("uvicorn.access")
    for existing in access.handlers:
        for flt in existing.filters:
            handler.addFilter(flt)
    access.addHandler(handler)
    yield Site(f"http://127.0.0.1:{port}", web_settings, capture.lines)
    access.removeHandler(handler)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


def phone(browser):
    """A phone-sized page, as a focal point opens the link."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="id-ID"
    )
    return context.new_page()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def launch_referral(site: Site, intake_data: dict) -> Referral:
    """Launch as the CLI does, then deliver its messages (the same after-commit path)."""
    from flows.wake import after_commit

    catalog = load_catalog(site.settings)
    with transaction(site.engine) as session:
        referral = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=Sealer(site.settings.resolved_secret_key()),
            now=datetime.now(UTC),
        )
    after_commit(site.settings, [referral.id])
    return referral


def test_agency_inbox_lists_overdue_first(site, inbox, browser, intake_data):
    from datetime import timedelta

    catalog = load_catalog(site.settings)
    sealer = Sealer(site.settings.resolved_secret_key())
    now = datetime.now(UTC)
    references = []
    for hours_ago in (3, 30, 0):  # one is overdue by 6 hours (24 h clock)
        with transaction(site.engine) as session:
            references.append(
                launch(
                    session,
                    intake=Intake.model_validate(intake_data),
                    catalog=catalog,
                    sealer=sealer,
                    now=now - timedelta(hours=hours_ago),
                ).reference
            )
        with transaction(site.engine) as session:
            _, token = issue_grant(
                session,
                kind=GrantKind.agency,
                agency="polres-ppa",
                holder="ani",
                issued_by="operator:test",
                now=now,
                catalog=catalog,
            )
    page = phone(browser)
    page.goto(site.url + "/signin")
    page.get_by_label("Token akses").fill(token)
    page.get_by_role("button", name="Masuk").click()
    assert page.url.endswith("/inbox")
    shown = page.locator(".task .ref").all_inner_texts()
    assert shown[0] == references[1]  # the overdue one first, then by due time
    assert shown[1:] == [references[0], references[2]]
    assert "terlambat" in page.locator(".task").first.inner_text()
    shot(page, "inbox")


def link_in(message: dict, site: Site) -> str:
    """The signed link in a received message."""
    text = json.dumps(message)
    match = re.search(re.escape(site.url) + r"/s/[A-Za-z0-9_.\-]+", text)
    assert match, "the message carries no link to the web inbox"
    return match.group(0)


def test_focal_point_completes_a_step_from_a_real_message(site, inbox, browser, intake_data):
    referral = launch_referral(site, intake_data)
    message = inbox.wait_for("polres-ppa")[0]
    assert referral.reference in json.dumps(message) and "Siti" not in json.dumps(message)
    link = link_in(message, site)

    page = phone(browser)
    page.goto(link)
    assert "/s/" not in page.url  # the token left the address bar at once
    assert page.get_by_role("heading", name="Identifikasi korban dan keterangan awal").is_visible()
    assert page.get_by_text("Perempuan").is_visible()
    assert "Siti" not in page.content()
    shot(page, "step-ready")

    page.locator("#officer-accept").fill("Ani")
    page.get_by_role("button", name="Terima tugas").click()
    assert page.get_by_text("Tugas diterima").is_visible()
    page.get_by_label("Hasil").select_option("served")
    page.get_by_role("button", name="Selesaikan tugas").click()
    assert page.get_by_text("Tugas selesai").is_visible()

    # the next agencies hear at once, through the real relay
    for agency in ("dinkes", "dinsos"):
        assert link_in(inbox.wait_for(agency)[0], site)
    with Session(site.engine) as session:
        done = session.exec(
            select(Step).where(Step.referral_id == referral.id, Step.key == "identifikasi")
        ).one()
    assert done.status == StepStatus.completed

    # the inbox of the next agency, from its own message, and in English
    dinsos = phone(browser)
    dinsos.goto(link_in(inbox.of("dinsos")[0], site))
    dinsos.goto(site.url + "/inbox")
    assert dinsos.get_by_text(referral.reference).is_visible()
    shot(dinsos, "inbox-one-link")
    dinsos.get_by_role("link", name="English").click()
    assert dinsos.get_by_text("Steps from your links").is_visible()
    shot(dinsos, "inbox-en")
    page.goto(dinsos.url)

    # no link token reached the access log
    logged = "".join(site.access_log)
    assert "/s/[redacted]" in logged
    assert link.rsplit("/", 1)[1] not in logged


def test_link_for_one_agency_cannot_open_another_agencys_step(site, inbox, browser, intake_data):
    referral = launch_referral(site, intake_data)
    polres_link = link_in(inbox.wait_for("polres-ppa")[0], site)
    with Session(site.engine) as session:
        steps = {
            s.key: s for s in session.exec(select(Step).where(Step.referral_id == referral.id))
        }
    from models.links import LinkClaim, sign

    dinsos_link = f"{site.url}/s/" + sign(
        site.settings.resolved_secret_key(),
        LinkClaim("dinsos", steps["rumah-aman"].id, datetime.now(UTC).replace(year=2099)),
    )
    page = phone(browser)
    page.goto(dinsos_link)
    target = polres_link  # the dinsos session now asks for the police step
    response = page.goto(
        f"{site.url}/referrals/{referral.reference}/steps/{steps['identifikasi'].id}"
    )
    # Another agency's step answers as one that does not exist, naming nothing of it.
    assert response.status == 404
    assert page.get_by_role("heading", name="Tidak ditemukan").is_visible()
    assert "Perempuan" not in page.content() and "identifikasi" not in page.content()
    shot(page, "refused")
    assert target


def test_coordinator_launches_a_referral_through_the_intake_form(site, inbox, browser):
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
    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    page.goto(site.url + "/")
    page.get_by_label("Token akses").fill(token)
    page.get_by_role("button", name="Masuk").click()
    page.get_by_role("link", name="+ Intake baru").click()
    page.get_by_label("Korban TPPO dewasa (WNI)").check()
    page.get_by_role("button", name="Lanjut").click()
    page.get_by_label("Darurat").check()
    page.get_by_label("Nama", exact=True).fill("Rina Contoh")
    page.get_by_label("Jenis kelamin").select_option("F")
    page.get_by_label("Tahun lahir").fill("1998")
    page.get_by_label("Bahasa (kode, dipisah koma, mis. id, jv)").fill("id, jv")
    # the pathway's receiving agencies are listed by name, ticked; the consent is one tick
    receiving = load_catalog(site.settings).pathways["tppo-dewasa"].agencies()
    ticked = page.locator("input[name=consent]:checked")
    assert sorted(ticked.evaluate_all("els => els.map(e => e.value)")) == sorted(receiving)
    assert page.get_by_text("Polres Bengkulu Tengah, Unit PPA").first.is_visible()
    page.get_by_role("button", name="Mulai rujukan").click()
    assert "Persetujuan korban belum dicatat" in page.get_by_role("alert").inner_text()
    page.get_by_label("Korban menyetujui datanya dibagikan kepada semua instansi").check()
    shot(page, "intake")
    page.get_by_role("button", name="Mulai rujukan").click()
    assert "Rujukan dimulai" in page.get_by_role("status").inner_text()
    reference = page.locator(".big-ref").inner_text()
    assert re.fullmatch(r"RJK-[0-9A-Z]{4}-[0-9A-Z]{2}", reference)
    assert "Rina" not in page.content()
    inbox.wait_for("polres-ppa")  # the first agency heard at once
    shot(page, "timeline")
    with Session(site.engine) as session:
        stored = session.exec(select(Referral).where(Referral.reference == reference)).one()
    assert stored.urgency.value == "emergency" and stored.coordinator == "coordinator-1"


def test_coordinator_sees_a_decline_and_reroutes_the_step(site, inbox, browser, intake_data):
    from models.actions import SYSTEM, accept_step, complete_step

    referral = launch_referral(site, intake_data)
    catalog = load_catalog(site.settings)
    with transaction(site.engine) as session:
        ident = session.exec(
            select(Step).where(Step.referral_id == referral.id, Step.key == "identifikasi")
        ).one()
        now = datetime.now(UTC)
        accept_step(session=session, step=ident, actor=SYSTEM, now=now)
        complete_step(
            session=session, step=ident, outcome="served", actor=SYSTEM, now=now, catalog=catalog
        )
    from flows.wake import after_commit

    after_commit(site.settings, [referral.id])

    # the health unit declines from the link in its message, on a phone
    dinkes = phone(browser)
    dinkes.goto(link_in(inbox.wait_for("dinkes")[0], site))
    dinkes.locator("summary", has_text="Tolak tugas").click()
    dinkes.locator("#decline-reason").select_option("no-capacity")
    dinkes.locator("#note-decline").fill("Poli penuh sampai Senin")
    dinkes.locator("#officer-decline").fill("dr. Hendra")
    dinkes.get_by_role("button", name="Tolak tugas").click()
    assert dinkes.get_by_role("status").is_visible()

    with transaction(site.engine) as session:
        _, token = issue_grant(
            session,
            kind=GrantKind.coordinator,
            agency="uptd-ppa",
            holder="coordinator-1",
            issued_by="operator:test",
            now=datetime.now(UTC),
            catalog=catalog,
        )
    page = phone(browser)
    page.goto(site.url + "/signin")
    page.get_by_label("Token akses").fill(token)
    page.get_by_role("button", name="Masuk").click()
    assert page.get_by_text("1 menunggu dialihkan").is_visible()  # the list says what waits
    shot(page, "coordinator-list")
    page.get_by_text(referral.reference).click()
    health = page.locator(".tl-item", has_text="Pemeriksaan dan rehabilitasi kesehatan").first
    said = health.inner_text()
    assert "Tidak ada kapasitas" in said and "Poli penuh sampai Senin" in said
    assert "dr. Hendra · Dinas Kesehatan" in said
    suggested = health.locator("optgroup").first
    assert suggested.get_attribute("label") == "Dapat mengambil alih layanan ini"
    assert "Kepolisian" not in suggested.inner_text() and "Polres" not in suggested.inner_text()
    shot(page, "coordinator-timeline-declined")
    health.locator("select[name=to]").select_option("ngo")
    health.get_by_role("button", name="Alihkan ke instansi lain").click()
    confirmation = page.get_by_role("status").inner_text()
    assert "Tugas dialihkan ke Yayasan anti-perdagangan orang (LSM lokal)" in confirmation
    assert re.search(r"Batas waktu baru: \d{4}-\d\d-\d\d \d\d:\d\d WIB", confirmation)
    assert page.get_by_text("menggantikan tugas yang ditolak oleh Dinas Kesehatan").is_visible()
    shot(page, "coordinator-rerouted")
    inbox.wait_for("ngo")  # the NGO heard of it through the real relay
