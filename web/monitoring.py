"""The task force's pages: what is late now (by agency, since when), and the periodic report.

Read only, for managers (and coordinators): step statuses, deadlines, reference codes and the
published report (small cells suppressed); never a person's data, never an action.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from models.report import Published, compute_report, parse_period, previous_period, publish
from models.report_output import FORMATS, Chart, charts, render, render_body
from web.deps import Manager, Page, PageDep
from web.render import error_page
from web.render import render as render_page
from web.views import late_steps

monitoring = APIRouter(include_in_schema=False)

FRESH_SECONDS = 600  # a report page is computed again after ten minutes
MEDIA = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class ShownReport:
    """A published report with its charts, as the pages show it."""

    published: Published
    charts: list[Chart]
    made: float


# The last reports shown, by database, period and language: charts take a second or two to draw.
_shown: dict[tuple[str, str, str], ShownReport] = {}


def _report(page: Page, label: str) -> ShownReport:
    web = page.web
    period = parse_period(label, web.settings.timezone)
    key = (web.settings.resolved_database_url, period.label, page.locale)
    cached = _shown.get(key)
    if cached is not None and time.monotonic() - cached.made < FRESH_SECONDS:
        return cached
    with web.transaction() as db:
        figures = compute_report(db, catalog=web.catalog, period=period, now=web.now())
    published = publish(figures, page.locale)
    shown = ShownReport(published, charts(published), time.monotonic())
    if len(_shown) > 16:
        _shown.clear()
    _shown[key] = shown
    return shown


def prefect_ui_url(page: Page) -> str:
    """The Prefect UI the manager's page links to."""
    settings = page.web.settings
    return settings.prefect_ui_url or f"http://{settings.prefect_host}:{settings.prefect_port}/"


@monitoring.get("/manager")
async def manager_home(page: PageDep, _: Manager):
    """Late and escalated steps now, by agency, and the last month's report with its charts."""
    web = page.web
    with web.transaction() as db:
        groups = late_steps(db, web.catalog, web.now(), page.locale)
    last = previous_period("month", web.now(), web.settings.timezone)
    shown = await run_in_threadpool(_report, page, last.label)
    context = {
        "groups": groups,
        "late_total": sum(len(rows) for _, rows in groups),
        "period": last.label,
        "charts": shown.charts,
        "prefect_url": prefect_ui_url(page),
    }
    return render_page(page.request, "manager.html", context)


@monitoring.get("/manager/reports/{period}")
async def report_page(page: PageDep, _: Manager, period: str):
    """The report of a period (YYYY-MM, YYYY-Qn, YYYY) with charts and downloads."""
    shown = await run_in_threadpool(_report, page, period)
    body = Markup(render_body(shown.published, shown.charts))  # our template, autoescaped
    context = {"period": shown.published.period, "body": body, "formats": FORMATS}
    return render_page(page.request, "report.html", context)


@monitoring.get("/manager/reports/{period}/download/{report_format}")
async def report_download(page: PageDep, _: Manager, period: str, report_format: str):
    """The report as a file: md, html, csv or xlsx (the published, suppressed figures)."""
    if report_format not in FORMATS:
        return error_page(page.request, 404)
    shown = await run_in_threadpool(_report, page, period)
    data = await run_in_threadpool(render, shown.published, report_format)
    name = f"laporan-{shown.published.period}.{report_format}"
    return Response(
        data,
        media_type=MEDIA[report_format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
