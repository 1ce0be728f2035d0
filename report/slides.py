"""The pack as a 16:9 PowerPoint file (python-pptx): large type for a projector, Russian text."""

from __future__ import annotations

import io

import pandas as pd
from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.util import Emu, Inches, Pt

from report.content import Pack, Section

WIDTH, HEIGHT = Inches(13.333), Inches(7.5)
MARGIN = Inches(0.4)
DARK = RGBColor(0x21, 0x25, 0x29)
MUTED = RGBColor(0x55, 0x55, 0x55)
ACCENT = RGBColor(0x2C, 0x7B, 0xB6)


def table_pages(section: Section) -> list[pd.DataFrame]:
    """A long table split into slide-sized parts (also used by the PDF)."""
    data = section.data
    if data.empty:
        return [data]
    return [data.iloc[i:i + section.slide_rows] for i in range(0, len(data), section.slide_rows)]


def cell_texts(part: pd.DataFrame, columns: list) -> list[list[str]]:
    return [[c.display(record.get(c.key), record.get("indicator")) for c in columns]
            for record in part.to_dict("records")]


def slide_columns(section: Section) -> list:
    """Columns shown on a slide: a description column is for the spreadsheet only."""
    return [c for c in section.columns if c.on_slide]


def _text(slide, left, top, width, height, text: str, size: int, bold: bool = False, colour=DARK) -> None:
    box = slide.shapes.add_textbox(left, top, width, height)
    frame = box.text_frame
    frame.word_wrap = True
    run = frame.paragraphs[0].add_run()
    run.text = text
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.color.rgb = colour


def _header(slide, pack: Pack, title: str) -> None:
    _text(slide, MARGIN, Inches(0.2), WIDTH - 2 * MARGIN, Inches(0.7), title, 28, bold=True)
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
          f"Данные на {pack.as_of:%d.%m.%Y %H:%M}", 24, colour=MUTED)
    _text(slide, Inches(0.8), HEIGHT - Inches(0.8), Inches(11.7), Inches(0.4),
          "Центр управления регионом · обращения граждан", 14, colour=MUTED)


def _picture_slide(prs: Presentation, pack: Pack, section: Section) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    _header(slide, pack, section.title)
    top, bottom = Inches(1.35), HEIGHT - Inches(0.55)
    # A map of licensed boundaries names their source under the picture too (ODbL).
    credit = next((a.text for a in section.figure.layout.annotations if a.name == "attribution"), None)
    if credit:
        bottom -= Inches(0.3)
        _text(slide, MARGIN, bottom, WIDTH - 2 * MARGIN, Inches(0.3), f"Границы: {credit}", 10, colour=MUTED)
    box_w, box_h = WIDTH - 2 * MARGIN, bottom - top
    picture = slide.shapes.add_picture(io.BytesIO(section.image), MARGIN, top)
    ratio = min(box_w / picture.width, box_h / picture.height)
    picture.width, picture.height = Emu(int(picture.width * ratio)), Emu(int(picture.height * ratio))
    picture.left = Emu(int((WIDTH - picture.width) / 2))


def _table_slides(prs: Presentation, pack: Pack, section: Section) -> None:
    columns = slide_columns(section)
    parts = table_pages(section)
    for number, part in enumerate(parts, start=1):
        slide = prs.slides.add_slide(prs.slide_layouts[6])
        suffix = f" ({number} из {len(parts)})" if len(parts) > 1 else ""
        _header(slide, pack, section.title + suffix)
        if part.empty:
            _text(slide, MARGIN, Inches(1.6), Inches(10), Inches(0.6), "Нет данных для выбранных условий.", 20)
            continue
        texts = cell_texts(part, columns)
        shape = slide.shapes.add_table(len(texts) + 1, len(columns), MARGIN, Inches(1.4), WIDTH - 2 * MARGIN,
                                       Inches(0.38) * (len(texts) + 1))
        table = shape.table
        total = sum(c.weight for c in columns)
        for j, column in enumerate(columns):
            table.columns[j].width = Emu(int((WIDTH - 2 * MARGIN) * column.weight / total))
        for j, column in enumerate(columns):
            _cell(table.cell(0, j), column.header, bold=True)
        for i, row in enumerate(texts, start=1):
            for j, text in enumerate(row):
                _cell(table.cell(i, j), text, right=columns[j].kind not in ("text", "date"))


def _cell(cell, text: str, bold: bool = False, right: bool = False) -> None:
    from pptx.enum.text import PP_ALIGN

    cell.text = text
    paragraph = cell.text_frame.paragraphs[0]
    paragraph.alignment = PP_ALIGN.RIGHT if right else PP_ALIGN.LEFT
    for run in paragraph.runs:
        run.font.size = Pt(14)
        run.font.bold = bold


def write(pack: Pack) -> bytes:
    prs = Presentation()
    prs.slide_width, prs.slide_height = WIDTH, HEIGHT
    _title_slide(prs, pack)
    for section in pack.sections:
        if section.figure is not None:
            _picture_slide(prs, pack, section)
        else:
            _table_slides(prs, pack, section)
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()
