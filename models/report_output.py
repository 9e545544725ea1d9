"""The report's outputs, all made from a published report (small cells already suppressed):
Markdown and HTML (templates/report/), CSV, XLSX (openpyxl) and charts (matplotlib, PNG).
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from models.report import ALSO_HIDDEN, HIDDEN, NO_MEASURE, Published, PublishedTable
from models.settings import PROJECT_ROOT
from models.vocabulary import Words

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# matplotlib and openpyxl load when a chart or a workbook is made (about 60 MiB and 0.4 s):
# serve's web inbox and runner import this module, and most of their life make neither.

REPORT_TEMPLATES = PROJECT_ROOT / "templates" / "report"
FORMATS = ("md", "html", "csv", "xlsx")

WORDS: dict[str, Words] = {
    "title": Words(
        id="Laporan pemantauan rujukan korban TPPO", en="Monitoring report: referral of victims"
    ),
    "period": Words(id="Periode", en="Period"),
    "made": Words(id="Dibuat", en="Made"),
    "made_by": Words(
        id="Gugus Tugas PP-TPPO · dibuat oleh Rujukan", en="Anti-trafficking task force · Rujukan"
    ),
    "legend": Words(
        id=f"Jumlah 1 sampai 4 ditulis \u201c{HIDDEN}\u201d; jumlah yang dapat membuka sel itu "
        f"dari totalnya ditulis \u201c{ALSO_HIDDEN}\u201d; persentase dan waktu atas kurang "
        f"dari 5 kasus ditulis \u201c{NO_MEASURE}\u201d.",
        en=f"Counts from 1 to 4 read \u201c{HIDDEN}\u201d; a count that would let one be "
        f"worked out from its total reads \u201c{ALSO_HIDDEN}\u201d; percentages and times over "
        f"fewer than 5 cases read \u201c{NO_MEASURE}\u201d.",
    ),
    "no_identity": Words(
        id="Laporan ini tidak memuat nama, kontak, tanggal lahir, alamat atau kode rujukan.",
        en="This report holds no names, contacts, birth dates, addresses or reference codes.",
    ),
    "charts": Words(id="Grafik", en="Charts"),
    "chart_on_time": Words(
        id="Tugas selesai tepat waktu menurut instansi (%)", en="Steps completed on time (%)"
    ),
    "chart_funnel": Words(id="Sejauh mana rujukan berjalan", en="How far referrals got"),
    "chart_trend": Words(
        id="Rujukan dan tugas terlambat per periode", en="Referrals and overdue steps over time"
    ),
    "contents": Words(id="Isi", en="Contents"),
    "table": Words(id="Tabel", en="Table"),
    "row": Words(id="Baris", en="Row"),
    "column": Words(id="Kolom", en="Column"),
    "value": Words(id="Nilai", en="Value"),
}


def words(locale: str) -> dict[str, str]:
    """The frame's words in `locale`."""
    return {key: w.text(locale) for key, w in WORDS.items()}


# --- charts ---------------------------------------------------------------------------------------

BLUE, ORANGE, GREY = "#1f5f8b", "#d9822b", "#6b7280"
ON_TIME = 3  # the on-time percent's cell in a row of the agencies table
WIDTH = 4.4  # inches: a chart stays readable on a phone, where it is shown 350 px wide


@dataclass(frozen=True)
class Chart:
    """A chart: its key, its title and the PNG."""

    key: str
    title: str
    png: bytes

    @property
    def data_uri(self) -> str:
        """The PNG as a data: URI, for an <img> that needs no request."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    return buffer.getvalue()


def _hbar(
    title: str, labels: list[str], series: list[tuple[str, str, list[float | None], list[str]]]
) -> Figure:
    """Horizontal bars, one group per label; a hidden value gets no bar, only its text."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    height = 0.8 + 0.3 * len(labels) * max(1, len(series))
    figure = Figure(figsize=(WIDTH, min(max(height, 2.0), 12)))
    axes = figure.subplots()
    width = 0.8 / len(series)
    top = max((v for _, _, values, _ in series for v in values if v is not None), default=1) or 1
    for n, (name, colour, values, texts) in enumerate(series):
        positions = [i + n * width for i in range(len(labels))]
        bars = axes.barh(
            positions, [v or 0 for v in values], height=width, color=colour, label=name
        )
        for bar, value, shown in zip(bars, values, texts, strict=True):
            axes.text(
                (value or 0) + top * 0.01,
                bar.get_y() + bar.get_height() / 2,
                shown,
                va="center",
                fontsize=8,
                color="black" if value is not None else GREY,
            )
    axes.set_yticks([i + width * (len(series) - 1) / 2 for i in range(len(labels))], labels)
    axes.invert_yaxis()
    axes.set_xlim(0, top * 1.15)
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    axes.set_title(_wrap(title, 50), fontsize=9, loc="left")
    if len(series) > 1:
        axes.legend(fontsize=8, frameon=False, loc="lower right")
    return figure


def _wrap(text: str, width: int = 24) -> str:
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)
    return text[: cut if cut > 0 else width] + "\n" + _wrap(text[cut + 1 if cut > 0 else width :])


def charts(published: Published) -> list[Chart]:
    """On-time percent by agency, the funnel of each pathway, referrals and overdue over time."""
    w = words(published.locale)
    made = []
    agencies = published.table("agencies")
    on_time = ON_TIME
    labels = [_wrap(row[0]) for row in agencies.rows]
    values = [row[on_time] for row in agencies.values]
    texts = [
        row[on_time + 1] + ("%" if row[on_time + 1] != NO_MEASURE else "") for row in agencies.rows
    ]
    if labels:
        figure = _hbar(w["chart_on_time"], labels, [("%", BLUE, values, texts)])
        figure.axes[0].set_xlim(0, 110)
        made.append(Chart("on-time", w["chart_on_time"], _png(figure)))
    for pathway in published.pathways:
        table = published.table(f"funnel-{pathway}")
        labels = [_wrap(row[0]) for row in table.rows]
        series = [
            (
                table.columns[c + 1],
                colour,
                [r[c] for r in table.values],
                [r[c + 1] for r in table.rows],
            )
            for c, colour in ((0, BLUE), (1, ORANGE))
        ]
        title = table.title
        made.append(Chart(f"funnel-{pathway}", title, _png(_hbar(title, labels, series))))
    trend = published.table("trend")
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(WIDTH, 2.8))
    axes = figure.subplots()
    periods = [row[0][5:] or row[0] for row in trend.rows]
    for c, colour, marker in ((0, BLUE, "o"), (1, ORANGE, "s")):
        values = [r[c] for r in trend.values]
        axes.plot(
            periods,
            [float("nan") if v is None else v for v in values],
            color=colour,
            marker=marker,
            label=trend.columns[c + 1],
        )
        for x, (value, shown) in enumerate(
            zip(values, [r[c + 1] for r in trend.rows], strict=True)
        ):
            if value is None:  # a hidden count is written where it would be, never plotted
                axes.annotate(shown, (x, 0), fontsize=7, color=colour, ha="center", va="bottom")
    axes.set_ylim(bottom=0)
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    axes.legend(fontsize=8, frameon=False)
    axes.set_title(_wrap(w["chart_trend"], 50), fontsize=9, loc="left")
    made.append(Chart("trend", w["chart_trend"], _png(figure)))
    return made


# --- documents ------------------------------------------------------------------------------------


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(REPORT_TEMPLATES),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _context(published: Published, chart_list: list[Chart] | None, link: str | None) -> dict:
    return {
        "r": published,
        "w": words(published.locale),
        "charts": chart_list or [],
        "link": link,
        "made": published.made_at.strftime("%Y-%m-%d %H:%M UTC"),
    }


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def render_markdown(
    published: Published, *, chart_list: list[Chart] | None = None, link: str | None = None
) -> str:
    """The report in Markdown (charts as data: images if given, and a link to the web page)."""
    environment = _environment()
    environment.filters["cell"] = _md_cell
    return environment.get_template("report.md.j2").render(_context(published, chart_list, link))


def render_html(published: Published, *, chart_list: list[Chart] | None = None) -> str:
    """The report as one HTML file, charts embedded as PNG data: URIs, no script."""
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            _context(published, chart_list if chart_list is not None else charts(published), None)
        )
    )


def render_body(published: Published, chart_list: list[Chart]) -> str:
    """The report's body (meta, legend, charts, tables) for a page of the web app."""
    return _environment().get_template("body.html.j2").render(_context(published, chart_list, None))


def render_csv(published: Published) -> str:
    """Every table in long form: table, row, column, value (as shown, suppressed)."""
    w = words(published.locale)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([w["period"], w["table"], w["row"], w["column"], w["value"]])
    for table in published.tables:
        for row in _all_rows(table):
            for column, value in zip(table.columns[1:], row[1:], strict=True):
                writer.writerow([published.period, table.title, row[0], column, value])
    return out.getvalue()


def _all_rows(table: PublishedTable) -> list[list[str]]:
    return table.rows + ([table.total] if table.total else [])


def _number(text: str) -> str | float:
    """A shown cell as a spreadsheet value: a number where it is one, the mark otherwise."""
    try:
        return float(text.replace(",", ".")) if "." in text or "," in text else int(text)
    except ValueError:
        return text


def render_xlsx(published: Published, *, chart_list: list[Chart] | None = None) -> bytes:
    """A workbook: a cover sheet with the legend and charts, then one sheet per table."""
    from openpyxl import Workbook  # noqa: PLC0415
    from openpyxl.drawing.image import Image as SheetImage  # noqa: PLC0415
    from openpyxl.styles import Font  # noqa: PLC0415

    w = words(published.locale)
    book = Workbook()
    cover = book.active
    cover.title = published.period
    cover.append([w["title"]])
    cover["A1"].font = Font(bold=True, size=14)
    cover.append([w["period"], published.period])
    cover.append([w["made"], published.made_at.strftime("%Y-%m-%d %H:%M UTC")])
    cover.append([w["legend"]])
    row = 6
    for chart in chart_list if chart_list is not None else charts(published):
        image = SheetImage(io.BytesIO(chart.png))
        cover.add_image(image, f"A{row}")
        row += int(image.height / 20) + 2
    used: set[str] = set()
    for n, table in enumerate(published.tables, 1):
        name = f"{n:02d} {table.key}"[:31]
        used.add(name)
        sheet = book.create_sheet(name)
        sheet.append([table.title])
        sheet["A1"].font = Font(bold=True)
        if table.note:
            sheet.append([table.note])
        sheet.append(table.columns)
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
        for shown in _all_rows(table):
            sheet.append([shown[0], *(_number(v) for v in shown[1:])])
        sheet.column_dimensions["A"].width = 44
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(published: Published, report_format: str) -> bytes:
    """The report in one of FORMATS, as bytes to write to a file."""
    if report_format == "md":
        return render_markdown(published).encode()
    if report_format == "html":
        return render_html(published).encode()
    if report_format == "csv":
        return render_csv(published).encode()
    if report_format == "xlsx":
        return render_xlsx(published)
    raise ValueError(f"unknown report format {report_format!r}: one of {', '.join(FORMATS)}")
