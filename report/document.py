"""The pack as a PDF (reportlab): the slides' content on 16:9 landscape pages, images embedded.

reportlab's built-in fonts have no Cyrillic: DejaVu Sans from Debian's fonts-dejavu-core is used
(``CUR_PDF_FONT_DIR`` points elsewhere if a system keeps its fonts in another place).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from report.content import Pack, Section
from report.slides import cell_texts, slide_columns, table_pages

PAGE = (960.0, 540.0)  # points: 33.9 × 19.05 cm, the 16:9 slide size
MARGIN = 28.0
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")
FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"


class FontMissing(RuntimeError):
    pass


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    dirs = [os.environ["CUR_PDF_FONT_DIR"]] if os.environ.get("CUR_PDF_FONT_DIR") else list(FONT_DIRS)
    for folder in dirs:
        regular, bold = Path(folder) / "DejaVuSans.ttf", Path(folder) / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdfmetrics.registerFont(TTFont(FONT, str(regular)))
            pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold)))
            pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD)
            return
    raise FontMissing("для PDF нужен шрифт DejaVu Sans с кириллицей: установите пакет fonts-dejavu-core "
                      "или укажите папку со шрифтами в CUR_PDF_FONT_DIR")


def _styles() -> dict[str, ParagraphStyle]:
    return {
        "cover": ParagraphStyle("cover", fontName=FONT_BOLD, fontSize=40, leading=48,
                                textColor=colors.HexColor("#2c7bb6"), spaceAfter=24),
        "big": ParagraphStyle("big", fontName=FONT, fontSize=24, leading=34),
        "title": ParagraphStyle("title", fontName=FONT_BOLD, fontSize=24, leading=30),
        "note": ParagraphStyle("note", fontName=FONT, fontSize=12, leading=16, textColor=colors.HexColor("#555555"),
                               spaceAfter=8),
        "cell": ParagraphStyle("cell", fontName=FONT, fontSize=11, leading=13),
        "head": ParagraphStyle("head", fontName=FONT_BOLD, fontSize=11, leading=13),
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write(pack: Pack) -> bytes:
    _register_fonts()
    styles = _styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN + 10, title=f"{pack.title} — {pack.period.label}",
                            author="ЦУР Heatmap")
    width, height = PAGE[0] - 2 * MARGIN, PAGE[1] - 2 * MARGIN - 10

    story: list = [Spacer(1, 80), Paragraph(_escape(pack.title), styles["cover"]),
                   Paragraph(_escape(pack.region), styles["big"]),
                   Paragraph(f"Период: {_escape(pack.period.label)}", styles["big"]),
                   Paragraph(f"Фильтры: {_escape(pack.filters)}", styles["big"]),
                   Paragraph(f"Данные на {pack.as_of:%d.%m.%Y %H:%M}", styles["big"])]
    for section in pack.sections:
        if section.figure is not None:
            story += [PageBreak(), *_heading(section.title, pack, styles), _image(section, width, height - 84)]
        else:
            story += _table(section, pack, styles, width)

    def footer(canvas, _doc) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(MARGIN, 14, f"{pack.region} · {pack.title} · {pack.note}")
        canvas.drawRightString(PAGE[0] - MARGIN, 14, str(canvas.getPageNumber()))
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _heading(title: str, pack: Pack, styles: dict) -> list:
    return [Paragraph(_escape(title), styles["title"]), Paragraph(_escape(pack.note), styles["note"])]


def _image(section: Section, width: float, height: float) -> Image:
    reader = ImageReader(io.BytesIO(section.image))
    w, h = reader.getSize()
    ratio = min(width / w, height / h)
    return Image(io.BytesIO(section.image), width=w * ratio, height=h * ratio)


def _table(section: Section, pack: Pack, styles: dict, width: float) -> list:
    columns = slide_columns(section)
    parts = table_pages(section)
    story: list = []
    for number, part in enumerate(parts, start=1):
        suffix = f" ({number} из {len(parts)})" if len(parts) > 1 else ""
        story += [PageBreak(), *_heading(section.title + suffix, pack, styles)]
        if part.empty:
            story.append(Paragraph("Нет данных для выбранных условий.", styles["big"]))
            continue
        head = [Paragraph(_escape(c.header), styles["head"]) for c in columns]
        body = [[Paragraph(_escape(text), styles["cell"]) for text in row] for row in cell_texts(part, columns)]
        total = sum(c.weight for c in columns)
        table = Table([head, *body], colWidths=[width * c.weight / total for c in columns], repeatRows=1)
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9eef5")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]))
        story.append(table)
    return story
