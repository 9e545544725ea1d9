"""The manager's page and the report page in Chromium on a phone (390x844): screenshots under
test-output/screenshots/, charts loaded as images, nothing wider than the screen, no script."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.access import GrantKind, issue_grant
from models.actions import launch
from models.catalog import load_catalog
from models.database import transaction
from models.intake import Intake
from models.report import previous_period
from models.seal import Sealer
from models.sweep import sweep
from tests.report.history import random_history
from tests.web import test_browser as browser_suite

# The browser suite's fixtures (uvicorn on a free port, Chromium) and markers.
browser, inbox, site = browser_suite.browser, browser_suite.inbox, browser_suite.site
pytestmark = browser_suite.pytestmark
SHOTS = browser_suite.SHOTS


def test_manager_page_and_report_page_on_a_phone(site, browser, intake_data):
    catalog = load_catalog(site.settings)
    sealer = Sealer(site.settings.resolved_secret_key())
    now = datetime.now(UTC)
    with transaction(site.engine) as session:
        random_history(session, referrals=300, year=now.year)
    for days_ago in (6, 3, 2):
        with transaction(site.engine) as session:
            launch(
                session,
                intake=Intake.model_validate(intake_data),
                catalog=catalog,
                sealer=sealer,
                now=now - timedelta(days=days_ago),
            )
    with transaction(site.engine) as session:
        sweep(session, catalog=catalog, now=now)
        _, token = issue_grant(
            session, kind=GrantKind.manager, agency="gugus-tugas", holder="sekretariat-1",
            issued_by="operator:test", now=now, catalog=catalog,
        )  # fmt: skip
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")
    page = context.new_page()
    page.goto(f"{site.url}/signin")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/manager")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "manager.png"))
    page.screenshot(path=str(SHOTS / "manager-full.png"), full_page=True)
    assert page.locator("h1").inner_text() == "Pemantauan rujukan"
    late = page.locator(".late-group")
    assert late.count() >= 1 and "Polres" in late.first.inner_text()
    assert "terlambat" in page.locator(".late-list").first.inner_text()
    _check_phone_page(page)
    last = previous_period("month", now, site.settings.timezone).label
    page.click(f"a[href='/manager/reports/{last}']")
    page.wait_for_url(f"{site.url}/manager/reports/{last}")
    page.screenshot(path=str(SHOTS / "report.png"))
    page.screenshot(path=str(SHOTS / "report-full.png"), full_page=True)
    assert "Kinerja instansi" in page.content()
    _check_phone_page(page)
    page.click("a[lang]")  # the language switch
    assert page.locator("h1").inner_text().startswith("Monitoring report")
    context.close()


def _check_phone_page(page) -> None:
    charts = page.locator("img[src^='data:image/png']")
    assert charts.count() >= 3
    for i in range(charts.count()):
        assert charts.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator("script").count() == 0
    # tables scroll inside their box; the page itself is never wider than the phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
