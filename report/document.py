"""The pack as a PDF (reportlab): the slides' content on 16:9 landscape pages of the same size.

Charts and the map are vector drawings from the same data as the PowerPoint charts and shapes (same
categories, values, axes, colours, label positions); the matrix and the tables use the slides'
geometry (``report.slides`` parts), so both documents split alike.

reportlab's built-in fonts have no Cyrillic: DejaVu Sans from Debian's fonts-dejavu-core is used
(``CUR_PDF_FONT_DIR`` points elsewhere if a system keeps its fonts in another place).
"""

from __future__ import annotations

import io
import math

from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from report import layout, maps
from report.content import Chart, Pack, Section
from report.slides import TablePart, heat_parts, table_parts

PAGE = (layout.PAGE_W, layout.PAGE_H)  # points: 33.9 × 19.05 cm, the 16:9 slide size
MARGIN = layout.MARGIN
FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"
CHART_FONT = 10
MUTED = colors.HexColor("#555555")
INK = colors.HexColor("#333333")


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    pdfmetrics.registerFont(TTFont(FONT, str(layout.font_file(False))))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(layout.font_file(True))))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD)


def _styles() -> dict[str, ParagraphStyle]:
    return {
        "cover": ParagraphStyle("cover", fontName=FONT_BOLD, fontSize=40, leading=48,
                                textColor=colors.HexColor("#2c7bb6"), spaceAfter=24),
        "big": ParagraphStyle("big", fontName=FONT, fontSize=24, leading=34),
        "title": ParagraphStyle("title", fontName=FONT_BOLD, fontSize=24, leading=30),
        "note": ParagraphStyle("note", fontName=FONT, fontSize=12, leading=16, textColor=MUTED, spaceAfter=8),
        "small": ParagraphStyle("small", fontName=FONT, fontSize=10, leading=13, textColor=MUTED, spaceBefore=4),
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write(pack: Pack) -> bytes:
    _register_fonts()
    styles = _styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=22,
                            bottomMargin=30, title=f"{pack.title} — {pack.period.label}", author="ЦУР Heatmap")
    width = layout.BODY_W
    body = layout.BODY_BOTTOM - layout.BODY_TOP

    story: list = [Spacer(1, 80), Paragraph(_escape(pack.title), styles["cover"]),
                   Paragraph(_escape(pack.region), styles["big"]),
                   Paragraph(f"Период: {_escape(pack.period.label)}", styles["big"]),
                   Paragraph(f"Фильтры: {_escape(pack.filters)}", styles["big"]),
                   Paragraph(f"Данные на {pack.data_date_text}", styles["big"])]
    for section in pack.sections:
        if section.choropleth is not None:
            story += [PageBreak(), *_heading(section.title, pack, styles), draw_map(section.choropleth)]
        elif section.heat is not None:
            story += _heat(section, pack, styles)
        elif section.chart is not None:
            chart = section.chart
            story += [PageBreak(), *_heading(section.title, pack, styles)]
            if chart.categories:
                story.append(draw_chart(chart, width, body - (24 if chart.note else 0)))
            if chart.note or not chart.categories:
                story.append(Paragraph(_escape(chart.note or "Нет данных для выбранных условий."), styles["small"]))
        else:
            story += _table(section, pack, styles)

    def footer(canvas, _doc) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, 14, f"{pack.region} · {pack.title} · {pack.note}")
        canvas.drawRightString(PAGE[0] - MARGIN, 14, str(canvas.getPageNumber()))
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _heading(title: str, pack: Pack, styles: dict) -> list:
    size = layout.title_size(title)
    style = ParagraphStyle("title", parent=styles["title"], fontSize=size, leading=size + 6)
    return [Paragraph(_escape(title), style), Paragraph(_escape(pack.note), styles["note"])]


def _flowable_table(part: TablePart) -> Table:
    size = part.grid.size

    def style(name: str, bold: bool, right: bool, ink: str) -> ParagraphStyle:
        return ParagraphStyle(name, fontName=FONT_BOLD if bold else FONT, fontSize=size, leading=size * layout.LEADING,
                              alignment=TA_RIGHT if right else TA_LEFT, textColor=colors.HexColor(ink))

    head = [Paragraph(_escape(t), style("h", True, False, "#212529")) for t in part.header]
    body = []
    for i, row in enumerate(part.rows):
        inks = part.inks[i] if part.inks else ["#212529"] * len(row)
        body.append([Paragraph(_escape(t), style("c", False, part.right[j], inks[j])) for j, t in enumerate(row)])
    table = Table([head, *body], colWidths=part.grid.widths, repeatRows=1, hAlign="LEFT")
    commands = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9eef5")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), layout.PAD_X), ("RIGHTPADDING", (0, 0), (-1, -1), layout.PAD_X),
        ("TOPPADDING", (0, 0), (-1, -1), layout.PAD_Y), ("BOTTOMPADDING", (0, 0), (-1, -1), layout.PAD_Y),
    ]
    for i in range(len(part.rows)):
        for j in range(len(part.header)):
            fill = part.fills[i][j] if part.fills else ("#ffffff" if i % 2 == 0 else "#f6f8fb")
            commands.append(("BACKGROUND", (j, i + 1), (j, i + 1), colors.HexColor(fill)))
    table.setStyle(TableStyle(commands))
    return table


def _table(section: Section, pack: Pack, styles: dict) -> list:
    story: list = []
    if section.data.empty:
        return [PageBreak(), *_heading(section.title, pack, styles),
                Paragraph("Нет данных для выбранных условий.", styles["big"])]
    for part in table_parts(section):
        suffix = f" ({part.number} из {part.count})" if part.count > 1 else ""
        story += [PageBreak(), *_heading(section.title + suffix, pack, styles), _flowable_table(part)]
    return story


def _heat(section: Section, pack: Pack, styles: dict) -> list:
    heat = section.heat
    if not heat.rows or not heat.columns:
        return [PageBreak(), *_heading(section.title, pack, styles),
                Paragraph("Нет обращений для выбранных условий.", styles["big"])]
    story: list = []
    for part in heat_parts(heat):
        suffix = f" ({part.number} из {part.count})" if part.count > 1 else ""
        story += [PageBreak(), *_heading(section.title + suffix, pack, styles), _flowable_table(part),
                  Paragraph(_escape(heat.legend), styles["small"])]
    return story


# --- charts ---------------------------------------------------------------------------------


def _ticks(chart: Chart) -> list[float]:
    low, high, step = chart.axis
    count = int(round((high - low) / step))
    return [low + i * step for i in range(count + 1)]


def tick_text(chart: Chart, value: float) -> str:
    """An axis label in the chart's axis format, Russian style («85 %», «92,5 %», «1 200», «12,5»)."""
    digits = 1 if chart.axis_format.endswith(".0%") or chart.axis_format.endswith(".0") else 0
    if "%" in chart.axis_format:
        sign = "+" if chart.number_format.startswith("+") and value > 0 else ""
        return f"{sign}{value * 100:.{digits}f}\u00a0%".replace(".", ",")
    return f"{value:,.{digits}f}".replace(",", "\u00a0").replace(".", ",")


def _wrap(text: str, width: float, size: float) -> list[str]:
    out, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if line and layout.text_width(candidate, size) > width:
            out.append(line)
            line = word
        else:
            line = candidate
    return [*out, line] if line else out


def draw_chart(chart: Chart, width: float, height: float) -> Drawing:
    return _bars(chart, width, height) if chart.kind == "bar" else _lines(chart, width, height)


def _string(x: float, y: float, text: str, size: float = CHART_FONT, anchor: str = "start",
            colour=None, bold: bool = False) -> String:
    return String(x, y, text, fontName=FONT_BOLD if bold else FONT, fontSize=size, fillColor=colour or INK,
                  textAnchor=anchor)


def _lines(chart: Chart, width: float, height: float) -> Drawing:
    drawing = Drawing(width, height)
    ticks = _ticks(chart)
    low, high, _ = chart.axis
    left = max(layout.text_width(tick_text(chart, t), CHART_FONT) for t in ticks) + 10
    bottom, top, right = 48.0, 8.0, 10.0
    plot_w, plot_h = width - left - right, height - bottom - top
    n = len(chart.categories)

    def x(i: int) -> float:
        return left + (i + 0.5) * plot_w / n

    def y(v: float) -> float:
        return bottom + (v - low) / (high - low) * plot_h

    for t in ticks:
        drawing.add(Line(left, y(t), left + plot_w, y(t), strokeColor=colors.HexColor("#dddddd"), strokeWidth=0.6))
        drawing.add(_string(left - 5, y(t) - 3.5, tick_text(chart, t), anchor="end"))
    drawing.add(Line(left, bottom, left + plot_w, bottom, strokeColor=colors.HexColor("#888888")))
    every = max(1, math.ceil(n * layout.text_width("окт 2025", CHART_FONT) / (plot_w * 0.9)))
    for i, name in enumerate(chart.categories):
        if i % every == 0:
            drawing.add(_string(x(i), bottom - 14, name, anchor="middle"))
    for series in chart.series:
        colour = colors.HexColor(series.colour)
        run: list[float] = []
        points = [(x(i), y(v)) if v is not None else None for i, v in enumerate(series.values)]
        for p in [*points, None]:  # a gap (no value) breaks the line
            if p is None:
                if len(run) >= 4:
                    drawing.add(PolyLine(run, strokeColor=colour, strokeWidth=2.5 if series.markers else 1.8,
                                         strokeDashArray=[6, 4] if series.dash else None))
                run = []
            else:
                run += list(p)
        if series.markers:
            for i, p in enumerate(points):
                if p is None:
                    continue
                hollow = bool(series.hollow and series.hollow[i])
                drawing.add(Circle(p[0], p[1], 4, strokeColor=colour, strokeWidth=2,
                                   fillColor=colors.white if hollow else colour))
    # legend under the month labels
    lx = left
    for series in chart.series:
        colour = colors.HexColor(series.colour)
        drawing.add(Line(lx, 10, lx + 24, 10, strokeColor=colour, strokeWidth=2.5,
                         strokeDashArray=[6, 4] if series.dash else None))
        drawing.add(_string(lx + 30, 6.5, series.name))
        lx += 30 + layout.text_width(series.name, CHART_FONT) + 24
    return drawing


def _bars(chart: Chart, width: float, height: float) -> Drawing:
    drawing = Drawing(width, height)
    series = chart.series[0]
    n = len(chart.categories)
    low, high, _ = chart.axis
    size = CHART_FONT if n <= 20 else 9
    name_room = min(max(layout.text_width(c, size) for c in chart.categories) + 8, width * 0.42)
    label_room = max(layout.text_width(chart.text(v), size) for v in series.values if v is not None) + 8
    bottom, top = 22.0, 4.0
    left, right = name_room, width - label_room
    row = (height - bottom - top) / n

    def x(v: float) -> float:
        return left + (v - low) / (high - low) * (right - left)

    for t in _ticks(chart):
        drawing.add(Line(x(t), bottom, x(t), height - top, strokeColor=colors.HexColor("#dddddd"), strokeWidth=0.6))
        drawing.add(_string(x(t), bottom - 14, tick_text(chart, t), anchor="middle"))
    for i, (name, value) in enumerate(zip(chart.categories, series.values, strict=True)):
        centre = height - top - (i + 0.5) * row
        lines = _wrap(name, name_room - 8, size)[:2]
        for k, text in enumerate(lines):
            drawing.add(_string(name_room - 6, centre - size / 2.8 + (len(lines) - 1 - 2 * k) * size * 0.55, text,
                                size, anchor="end"))
        if value is None:
            continue
        colour = colors.HexColor(series.point_colours[i] if series.point_colours else series.colour)
        start, end = x(max(low, 0.0)), x(value)
        drawing.add(Rect(min(start, end), centre - row * 0.36, abs(end - start), row * 0.72, fillColor=colour,
                         strokeColor=None))
        if chart.labels:
            drawing.add(_string(max(start, end) + 4, centre - size / 2.8, chart.text(value), size))
    drawing.add(Line(x(max(low, 0.0)), bottom, x(max(low, 0.0)), height - top, strokeColor=colors.HexColor("#888888")))
    return drawing


def draw_map(drawn: maps.Choropleth) -> Drawing:
    """The slide's map: the same outlines, colours, labels and legend (y turned upwards)."""
    width, height = layout.BODY_W, maps.BOX[1]
    drawing = Drawing(width, height)
    left = (maps.BOX[0] - drawn.size[0]) / 2
    top = (maps.BOX[1] - drawn.size[1]) / 2
    plate = colors.Color(1, 1, 1, alpha=maps.PLATE_OPACITY)
    for unit in drawn.units:
        for ring in unit.rings:
            if len(ring) < 3:
                continue
            points = [c for x, y in ring for c in (left + x, height - top - y)]
            drawing.add(Polygon(points, fillColor=colors.HexColor(unit.fill), strokeColor=colors.white,
                                strokeWidth=0.75))
    for unit in drawn.units:
        cx, cy = left + unit.at[0], height - top - unit.at[1]
        line = maps.NAME_SIZE * 1.2
        w, h = maps.label_size(unit.label)
        drawing.add(Rect(cx - w / 2, cy - h / 2, w, h, fillColor=plate, strokeColor=None))
        for k, text in enumerate(unit.label):
            y = cy + line * (len(unit.label) / 2 - k - 1) + 2.5
            drawing.add(_string(cx, y, text, maps.NAME_SIZE, anchor="middle", colour=colors.HexColor(unit.ink),
                                bold=k == 0))
    x, y = maps.BOX[0] + 10, height - 10 - CHART_FONT
    for k, text in enumerate(_wrap(drawn.title, maps.LEGEND_W - 10, CHART_FONT)):
        drawing.add(_string(x, y - k * CHART_FONT * 1.2, text, CHART_FONT, bold=True))
    y = height - 54 - 14
    for colour, text in drawn.legend:
        drawing.add(Rect(x, y, 22, 14, fillColor=colors.HexColor(colour), strokeColor=None))
        drawing.add(_string(x + 28, y + 3, text, CHART_FONT))
        y -= 22
    return drawing
