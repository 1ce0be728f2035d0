"""The pack as a 16:9 PowerPoint file (python-pptx): large type for a projector, Russian text.

Bars and lines are PowerPoint chart objects holding their data (editable, restylable, the numbers
behind them open in PowerPoint's data sheet); the matrix is a heat-map table with every unit named;
the map is the one picture. Table geometry comes from ``report.layout`` (measured text), shared with
the PDF so both show the same splits.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd
from pptx import Presentation
from pptx.chart.data import CategoryChartData
from pptx.dml.color import RGBColor
from pptx.enum.chart import XL_CHART_TYPE, XL_LABEL_POSITION, XL_LEGEND_POSITION, XL_MARKER_STYLE
from pptx.enum.dml import MSO_LINE_DASH_STYLE
from pptx.enum.text import MSO_ANCHOR, PP_ALIGN
from pptx.util import Emu, Inches, Pt

from report import layout, maps
from report.content import Chart, HeatTable, Pack, Section

WIDTH, HEIGHT = Inches(13.333), Inches(7.5)
MARGIN = Inches(0.4)
DARK = RGBColor(0x21, 0x25, 0x29)
MUTED = RGBColor(0x55, 0x55, 0x55)
ACCENT = RGBColor(0x2C, 0x7B, 0xB6)
HEAD_FILL = RGBColor(0xE9, 0xEE, 0xF5)
WHITE = RGBColor(0xFF, 0xFF, 0xFF)
TABLE_SIZES = (14, 12, 11, 10)  # points: the largest at which a table fits its slide's width
READABLE = 12
HEAT_SIZES = (12, 11, 10)
CHART_FONT = 12
NOTE_SIZE = 11
NOTE_ROOM = 24.0  # points under a chart or a table for its note line


def pt(value: float) -> Emu:
    return Emu(int(round(value * 12700)))


@dataclass
class TablePart:
    """One slide's share of a table: its rows (texts), its columns and their geometry."""
    header: list[str]
    rows: list[list[str]]
    grid: layout.Grid
    right: list[bool]  # numbers aligned right
    number: int
    count: int
    fills: list[list[str]] | None = None  # heat-map cells
    inks: list[list[str]] | None = None


def cell_texts(part: pd.DataFrame, columns: list) -> list[list[str]]:
    return [[c.display(record.get(c.key), record.get("indicator")) for c in columns]
            for record in part.to_dict("records")]


def slide_columns(section: Section) -> list:
    """Columns shown on a slide: a description column is for the spreadsheet only."""
    return [c for c in section.columns if c.on_slide]


def table_parts(section: Section) -> list[TablePart]:
    """A table section over the fewest slides: at each font size that fits the width its rows are
    split by their measured heights; the largest size of those needing fewest slides wins (also
    used by the PDF)."""
    columns = slide_columns(section)
    header = [c.header for c in columns]
    rows = cell_texts(section.data, columns)
    wrap = [c.kind == "text" for c in columns]
    right = [c.kind not in ("text", "date") for c in columns]
    best: list[TablePart] | None = None
    fitting = [size for size in TABLE_SIZES if layout.fit(header, rows, wrap, (size,)) is not None]
    # a room reads 12 pt and up: a smaller size only where the columns need it, not to save a slide
    readable = [size for size in fitting if size >= READABLE] or fitting
    for size in readable:
        grid = layout.fit(header, rows, wrap, (size,))
        head_h, heights = grid.heights(header, rows)
        slices = layout.pages(heights, layout.BODY_BOTTOM - layout.BODY_TOP - head_h)
        if best is None or len(slices) < len(best):
            best = [TablePart(header, rows[s], grid, right, n, len(slices)) for n, s in enumerate(slices, start=1)]
    if best is None:  # not with the pack's columns; an equal split at the smallest size rather than a failure
        grid = layout.Grid(TABLE_SIZES[-1], [layout.BODY_W / len(columns)] * len(columns))
        best = [TablePart(header, rows, grid, right, 1, 1)]
    return best


def heat_parts(heat: HeatTable) -> list[TablePart]:
    """The matrix over the fewest slides where every unit's name stays whole on one line and every
    header word fits its column: columns grouped to the width, rows split to the height, the largest
    font of those giving that fewest number (names repeated on each slide)."""
    best: list[TablePart] | None = None
    for size in HEAT_SIZES:
        name_w = max([layout.text_width(n, size) for n in heat.rows]
                     + [layout.word_width(heat.corner, size, True)]) + 2 * layout.PAD_X + 1
        need = []
        for j, column in enumerate(heat.columns):
            cells = [layout.text_width(row[j], size) for row in heat.texts]
            need.append(max([layout.word_width(column, size, True), *cells]) + 2 * layout.PAD_X + 1)
        room_w = layout.BODY_W - name_w
        if not need or max(need) > room_w:
            continue
        groups: list[list[int]] = [[]]
        for j, w in enumerate(need):
            if groups[-1] and sum(need[k] for k in groups[-1]) + w > room_w:
                groups.append([])
            groups[-1].append(j)
        # as many columns on each slide as the widest split needs, spread evenly
        per = -(-len(need) // len(groups))
        groups = [list(range(i, min(i + per, len(need)))) for i in range(0, len(need), per)]
        parts: list[TablePart] = []
        plans = []
        for group in groups:
            spare = (room_w - sum(need[k] for k in group)) / len(group)
            widths = [name_w]
            for k in group:  # room left widens a column up to its header on one line
                one_line = layout.text_width(heat.columns[k], size, True) + 2 * layout.PAD_X + 1
                widths.append(max(need[k], min(one_line, need[k] + max(spare, 0))))
            grid = layout.Grid(size, widths)
            header = [heat.corner, *(heat.columns[k] for k in group)]
            rows = [[name, *(heat.texts[i][k] for k in group)] for i, name in enumerate(heat.rows)]
            head_h, heights = grid.heights(header, rows)
            slices = layout.pages(heights, layout.BODY_BOTTOM - layout.BODY_TOP - NOTE_ROOM - head_h)
            plans.append((group, grid, header, rows, slices))
        total = sum(len(p[4]) for p in plans)
        number = 0
        for group, grid, header, rows, slices in plans:
            for s in slices:
                number += 1
                parts.append(TablePart(header, rows[s], grid, [False] + [True] * len(group), number, total,
                                       [["#ffffff", *(heat.fills[i][k] for k in group)] for i in range(s.start, s.stop)],
                                       [["#212529", *(heat.inks[i][k] for k in group)] for i in range(s.start, s.stop)]))
        if best is None or len(parts) < len(best):
            best = parts
    if best is None:
        raise ValueError("матрица не помещается на слайд")
    return best


def _rgb(hex_colour: str) -> RGBColor:
    return RGBColor.from_string(hex_colour.lstrip("#").upper())


def _text(slide, left, top, width, height, text: str, size: float, bold: bool = False, colour=DARK) -> None:
    box = slide.shapes.add_textbox(left, top, width, height)
    frame = box.text_frame
    frame.word_wrap = True
    run = frame.paragraphs[0].add_run()
    run.text = text
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.color.rgb = colour


def _header(slide, pack: Pack, title: str) -> None:
    _text(slide, MARGIN, Inches(0.2), WIDTH - 2 * MARGIN, Inches(0.7), title, layout.title_size(title), bold=True)
    _text(slide, MARGIN, Inches(0.85), WIDTH - 2 * MARGIN, Inches(0.4), pack.note, 14, colour=MUTED)
    _text(slide, MARGIN, HEIGHT - Inches(0.45), WIDTH - 2 * MARGIN, Inches(0.35),
          f"{pack.region} · {pack.title} · {pack.note}", 10, colour=MUTED)


def _title_slide(prs: Presentation, pack: Pack) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _text(slide, Inches(0.8), Inches(1.6), Inches(11.7), Inches(1.2), pack.title, 44, bold=True, colour=ACCENT)
    _text(slide, Inches(0.8), Inches(2.8), Inches(11.7), Inches(0.8), pack.region, 28)
    _text(slide, Inches(0.8), Inches(3.7), Inches(11.7), Inches(0.6), f"Период: {pack.period.label}", 24)
    _text(slide, Inches(0.8), Inches(4.3), Inches(11.7), Inches(0.6), f"Фильтры: {pack.filters}", 24)
    _text(slide, Inches(0.8), Inches(4.9), Inches(11.7), Inches(0.6),
          f"Данные на {pack.data_date_text}", 24, colour=MUTED)
    _text(slide, Inches(0.8), HEIGHT - Inches(0.8), Inches(11.7), Inches(0.4),
          "Центр управления регионом · обращения граждан", 14, colour=MUTED)


def _map_slide(prs: Presentation, pack: Pack, section: Section) -> None:
    """The map as native shapes: a freeform per unit (named after it), its name and value, a legend."""
    from pptx.enum.shapes import MSO_SHAPE

    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _header(slide, pack, section.title)
    drawn = section.choropleth
    left = layout.MARGIN + (maps.BOX[0] - drawn.size[0]) / 2
    top = layout.BODY_TOP + 12 + (maps.BOX[1] - drawn.size[1]) / 2
    for unit in drawn.units:
        rings = [r for r in unit.rings if len(r) >= 3]
        if not rings:
            continue
        first = rings[0]
        builder = slide.shapes.build_freeform(pt(left + first[0][0]), pt(top + first[0][1]), scale=1.0)
        builder.add_line_segments([(pt(left + x), pt(top + y)) for x, y in first[1:]], close=True)
        for ring in rings[1:]:
            builder.move_to(pt(left + ring[0][0]), pt(top + ring[0][1]))
            builder.add_line_segments([(pt(left + x), pt(top + y)) for x, y in ring[1:]], close=True)
        outline = builder.convert_to_shape()
        outline.name = unit.name
        outline.fill.solid()
        outline.fill.fore_color.rgb = _rgb(unit.fill)
        outline.line.color.rgb = WHITE
        outline.line.width = Pt(0.75)
        outline.shadow.inherit = False
    for unit in drawn.units:  # labels over every outline
        w, h = maps.label_size(unit.label)
        box = slide.shapes.add_textbox(pt(left + unit.at[0] - w / 2), pt(top + unit.at[1] - h / 2), pt(w), pt(h))
        _translucent(box, "#ffffff", maps.PLATE_OPACITY)
        frame = box.text_frame
        frame.word_wrap = False
        frame.margin_left = frame.margin_right = frame.margin_top = frame.margin_bottom = 0
        for k, text in enumerate(unit.label):
            paragraph = frame.paragraphs[0] if k == 0 else frame.add_paragraph()
            paragraph.alignment = PP_ALIGN.CENTER
            run = paragraph.add_run()
            run.text = text
            run.font.size = Pt(maps.NAME_SIZE)
            run.font.bold = k == 0
            run.font.name = layout.SLIDE_FONT
            run.font.color.rgb = _rgb(unit.ink)
    x = layout.MARGIN + maps.BOX[0] + 10
    y = layout.BODY_TOP + 10
    _text(slide, pt(x), pt(y), pt(maps.LEGEND_W - 10), pt(40), drawn.title, NOTE_SIZE, bold=True)
    y += 44
    for colour, text in drawn.legend:
        swatch = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, pt(x), pt(y), pt(22), pt(14))
        swatch.fill.solid()
        swatch.fill.fore_color.rgb = _rgb(colour)
        swatch.line.fill.background()
        swatch.shadow.inherit = False
        _text(slide, pt(x + 26), pt(y - 4), pt(maps.LEGEND_W - 40), pt(20), text, NOTE_SIZE)
        y += 22
    if drawn.attribution:  # licensed boundaries name their source on the slide too (ODbL)
        _text(slide, pt(x), pt(layout.BODY_BOTTOM - 30), pt(maps.LEGEND_W - 10), pt(30),
              f"Границы: {drawn.attribution}", NOTE_SIZE - 2, colour=MUTED)


def _translucent(shape, colour: str, opacity: float) -> None:
    """A solid fill with an alpha (python-pptx sets no transparency itself: one DrawingML element)."""
    from pptx.oxml.ns import qn

    shape.fill.solid()
    shape.fill.fore_color.rgb = _rgb(colour)
    srgb = shape.fill._xPr.find(qn("a:solidFill")).find(qn("a:srgbClr"))
    alpha = srgb.makeelement(qn("a:alpha"), {"val": str(int(opacity * 100000))})
    srgb.append(alpha)


def _chart_slide(prs: Presentation, pack: Pack, section: Section) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _header(slide, pack, section.title)
    chart: Chart = section.chart
    bottom = layout.BODY_BOTTOM - (NOTE_ROOM if chart.note else 0)
    if not chart.categories:
        _text(slide, MARGIN, pt(layout.BODY_TOP + 10), Inches(10), Inches(0.6), chart.note or
              "Нет данных для выбранных условий.", 20)
        return
    data = CategoryChartData(number_format=chart.number_format)
    data.categories = chart.categories
    for series in chart.series:
        data.add_series(series.name, series.values)
    kind = XL_CHART_TYPE.LINE_MARKERS if chart.kind == "line" else XL_CHART_TYPE.BAR_CLUSTERED
    frame = slide.shapes.add_chart(kind, pt(layout.MARGIN), pt(layout.BODY_TOP), pt(layout.BODY_W),
                                   pt(bottom - layout.BODY_TOP), data)
    _style_chart(frame.chart, chart)
    if chart.note:
        _text(slide, MARGIN, pt(bottom), WIDTH - 2 * MARGIN, pt(NOTE_ROOM), chart.note, NOTE_SIZE, colour=MUTED)


def _style_chart(out, chart: Chart) -> None:
    out.font.size = Pt(CHART_FONT if chart.kind == "line" or len(chart.categories) <= 20 else 11)
    out.font.name = layout.SLIDE_FONT
    axis = out.value_axis
    axis.minimum_scale, axis.maximum_scale, axis.major_unit = chart.axis
    axis.has_major_gridlines = True
    axis.major_gridlines.format.line.color.rgb = RGBColor(0xDD, 0xDD, 0xDD)
    axis.tick_labels.number_format = chart.axis_format
    axis.tick_labels.number_format_is_linked = False
    plot = out.plots[0]
    if chart.kind == "bar":
        out.has_legend = False
        out.category_axis.reverse_order = True  # the first category (the highest) on top
        plot.gap_width = 40
        plot.vary_by_categories = False
        series = plot.series[0]
        series.format.fill.solid()
        series.format.fill.fore_color.rgb = _rgb(chart.series[0].colour)
        for i, colour in enumerate(chart.series[0].point_colours or []):
            point = series.points[i]
            point.format.fill.solid()
            point.format.fill.fore_color.rgb = _rgb(colour)
        if chart.labels:
            plot.has_data_labels = True
            labels = plot.data_labels
            labels.number_format = chart.number_format
            labels.number_format_is_linked = False
            labels.position = XL_LABEL_POSITION.OUTSIDE_END
        return
    out.has_legend = True
    out.legend.position = XL_LEGEND_POSITION.BOTTOM
    out.legend.include_in_layout = False
    for spec, series in zip(chart.series, plot.series, strict=True):
        series.smooth = False
        line = series.format.line
        line.color.rgb = _rgb(spec.colour)
        line.width = Pt(3 if spec.markers else 2)
        if spec.dash:
            line.dash_style = MSO_LINE_DASH_STYLE.DASH
        if not spec.markers:
            series.marker.style = XL_MARKER_STYLE.NONE
            continue
        series.marker.style = XL_MARKER_STYLE.CIRCLE
        series.marker.size = 8
        series.marker.format.fill.solid()
        series.marker.format.fill.fore_color.rgb = _rgb(spec.colour)
        series.marker.format.line.color.rgb = _rgb(spec.colour)
        for i, hollow in enumerate(spec.hollow or []):
            if hollow:  # a value still moving: a hollow point, as on the page
                marker = series.points[i].marker
                marker.style = XL_MARKER_STYLE.CIRCLE
                marker.size = 9
                marker.format.fill.solid()
                marker.format.fill.fore_color.rgb = WHITE
                marker.format.line.color.rgb = _rgb(spec.colour)
                marker.format.line.width = Pt(2)


def _table(slide, part: TablePart, top: float) -> None:
    grid = part.grid
    head_h, heights = grid.heights(part.header, part.rows)
    shape = slide.shapes.add_table(len(part.rows) + 1, len(part.header), pt(layout.MARGIN), pt(top),
                                   pt(sum(grid.widths)), pt(head_h + sum(heights)))
    table = shape.table
    table.first_row = True
    for j, width in enumerate(grid.widths):
        table.columns[j].width = pt(width)
    table.rows[0].height = pt(head_h)
    for i, height in enumerate(heights, start=1):
        table.rows[i].height = pt(height)
    for j, text in enumerate(part.header):
        _cell(table.cell(0, j), text, grid.size, bold=True, fill="#e9eef5", ink="#212529")
    for i, row in enumerate(part.rows, start=1):
        for j, text in enumerate(row):
            fill = part.fills[i - 1][j] if part.fills else ("#ffffff" if i % 2 else "#f6f8fb")
            ink = part.inks[i - 1][j] if part.inks else "#212529"
            _cell(table.cell(i, j), text, grid.size, right=part.right[j], fill=fill, ink=ink)


def _cell(cell, text: str, size: float, bold: bool = False, right: bool = False, fill: str = "#ffffff",
          ink: str = "#212529") -> None:
    cell.text = text
    cell.margin_left = cell.margin_right = pt(layout.PAD_X)
    cell.margin_top = cell.margin_bottom = pt(layout.PAD_Y)
    cell.vertical_anchor = MSO_ANCHOR.MIDDLE
    cell.fill.solid()
    cell.fill.fore_color.rgb = _rgb(fill)
    paragraph = cell.text_frame.paragraphs[0]
    cell.text_frame.word_wrap = True
    paragraph.alignment = PP_ALIGN.RIGHT if right else PP_ALIGN.LEFT
    for run in paragraph.runs:
        run.font.size = Pt(size)
        run.font.bold = bold
        run.font.name = layout.SLIDE_FONT
        run.font.color.rgb = _rgb(ink)


def _table_slides(prs: Presentation, pack: Pack, section: Section) -> None:
    if section.data.empty:
        slide = prs.slides.add_slide(prs.slide_layouts[6])
        _header(slide, pack, section.title)
        _text(slide, MARGIN, Inches(1.6), Inches(10), Inches(0.6), "Нет данных для выбранных условий.", 20)
        return
    for part in table_parts(section):
        slide = prs.slides.add_slide(prs.slide_layouts[6])
        _header(slide, pack, _part_title(section.title, part))
        _table(slide, part, layout.BODY_TOP)


def _part_title(title: str, part) -> str:  # noqa: ANN001 - a table part of report.layout
    """A slide's title; a table split over several slides says which part this is."""
    return title + (f" ({part.number} из {part.count})" if part.count > 1 else "")


def _heat_slides(prs: Presentation, pack: Pack, section: Section) -> None:
    heat: HeatTable = section.heat
    if not heat.rows or not heat.columns:
        slide = prs.slides.add_slide(prs.slide_layouts[6])
        _header(slide, pack, section.title)
        _text(slide, MARGIN, Inches(1.6), Inches(10), Inches(0.6), "Нет обращений для выбранных условий.", 20)
        return
    for part in heat_parts(heat):
        slide = prs.slides.add_slide(prs.slide_layouts[6])
        _header(slide, pack, _part_title(section.title, part))
        _table(slide, part, layout.BODY_TOP)
        _text(slide, MARGIN, pt(layout.BODY_BOTTOM - NOTE_ROOM), WIDTH - 2 * MARGIN, pt(NOTE_ROOM), heat.legend,
              NOTE_SIZE, colour=MUTED)


def write(pack: Pack) -> bytes:
    prs = Presentation()
    prs.slide_width, prs.slide_height = WIDTH, HEIGHT
    _title_slide(prs, pack)
    for section in pack.sections:
        if section.choropleth is not None:
            _map_slide(prs, pack, section)
        elif section.heat is not None:
            _heat_slides(prs, pack, section)
        elif section.chart is not None:
            _chart_slide(prs, pack, section)
        else:
            _table_slides(prs, pack, section)
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()
