"""Table geometry shared by the slides and the PDF: text measured, never guessed.

A 16:9 slide (13.333 × 7.5 in) and a PDF page of the pack are both 960 × 540 points, so one layout in
points serves both writers. Text is measured with DejaVu Sans (the PDF's font; wider than Arial and
Calibri, which PowerPoint uses, so what fits here fits on the slide too). A column is never narrower
than the longest word of its header or cells plus padding: a header breaks between words, never
inside one («Обращени|й»). Names and numbers are kept on one line when the table allows it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

PAGE_W, PAGE_H = 960.0, 540.0  # points
MARGIN = 28.8  # 0.4 in
BODY_TOP = 97.2  # 1.35 in: under the heading and the filter line
BODY_BOTTOM = PAGE_H - 39.6  # 0.55 in above the bottom edge: the footer line
BODY_W = PAGE_W - 2 * MARGIN
PAD_X = 5.0  # cell padding left and right, points (PPTX cell margins and PDF table padding alike)
PAD_Y = 3.0
LEADING = 1.2  # line height ÷ font size
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")
SLIDE_FONT = "Arial"  # what PowerPoint shows (Liberation Sans, metric-compatible, under LibreOffice)


class FontMissing(RuntimeError):
    pass


def font_file(bold: bool = False) -> Path:
    """DejaVu Sans (``CUR_PDF_FONT_DIR`` points elsewhere if a system keeps its fonts in another place)."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    dirs = [os.environ["CUR_PDF_FONT_DIR"]] if os.environ.get("CUR_PDF_FONT_DIR") else list(FONT_DIRS)
    for folder in dirs:
        if (Path(folder) / name).exists():
            return Path(folder) / name
    raise FontMissing("для пакета нужен шрифт DejaVu Sans с кириллицей: установите пакет fonts-dejavu-core "
                      "или укажите папку со шрифтами в CUR_PDF_FONT_DIR")


@lru_cache(maxsize=4)
def _font(bold: bool) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_file(bold)), 100)


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of one line of ``text`` at ``size`` points, in points."""
    return _font(bold).getlength(text) * size / 100


def word_width(text: str, size: float, bold: bool = False) -> float:
    """Width of the longest word: the narrowest a wrapped cell can be."""
    return max((text_width(w, size, bold) for w in text.split()), default=0.0)


def lines(text: str, width: float, size: float, bold: bool = False) -> int:
    """Lines ``text`` takes when wrapped between words into ``width`` points (cell padding excluded)."""
    count, line = 0, ""
    for paragraph in text.split("\n"):
        count += 1
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and text_width(candidate, size, bold) > width:
                count += 1
                line = word
            else:
                line = candidate
    return max(count, 1)


def row_height(lines_: int, size: float) -> float:
    return lines_ * size * LEADING + 2 * PAD_Y


@dataclass(frozen=True)
class Grid:
    """A table laid out: font size, column widths (points, summing to at most the body width)."""
    size: float
    widths: list[float]

    def heights(self, header: list[str], rows: list[list[str]]) -> tuple[float, list[float]]:
        """Height of the header row and of each body row at these widths."""
        def one(texts: list[str], bold: bool) -> float:
            return row_height(max(lines(t, w - 2 * PAD_X, self.size, bold) for t, w in
                                  zip(texts, self.widths, strict=True)), self.size)
        return one(header, True), [one(r, False) for r in rows]


def fit(header: list[str], rows: list[list[str]], wrap: list[bool], sizes: tuple[float, ...] = (14, 12, 11, 10),
        width: float = BODY_W) -> Grid | None:
    """The largest font of ``sizes`` at which every column holds its longest header word (bold) and
    its cells — whole when ``wrap`` is False (names, numbers), their longest word otherwise — within
    ``width``; the room left is shared out towards each column's one-line width. None: nothing fits."""
    for size in sizes:
        least = []
        full = []
        for j, head in enumerate(header):
            cells = [r[j] for r in rows]
            need = max([word_width(head, size, True), *((word_width(c, size) if wrap[j] else text_width(c, size))
                                                         for c in cells)])
            one_line = max([text_width(head, size, True), *(text_width(c, size) for c in cells)])
            least.append(need + 2 * PAD_X + 1)
            full.append(one_line + 2 * PAD_X + 1)
        if sum(least) > width:
            continue
        spare = width - sum(least)
        wish = [max(f - m, 0.0) for f, m in zip(full, least, strict=True)]
        if sum(wish) <= spare:
            widths = [f for f in full]  # everything on one line; the rest stays free
            extra = (width - sum(widths)) / len(widths)
            widths = [w + extra for w in widths]
        else:
            widths = [m + spare * w / sum(wish) for m, w in zip(least, wish, strict=True)]
        return Grid(size, widths)
    return None


def pages(heights: list[float], room: float) -> list[slice]:
    """Consecutive rows split into pages of at most ``room`` points, as evenly as the count allows."""
    if not heights:
        return [slice(0, 0)]
    count = 1
    while True:
        per = math.ceil(len(heights) / count)
        parts = [slice(i, min(i + per, len(heights))) for i in range(0, len(heights), per)]
        if all(sum(heights[p]) <= room for p in parts) or per == 1:
            return parts
        count += 1


def title_size(text: str, sizes: tuple[float, ...] = (28, 24, 20)) -> float:
    """The largest heading size at which ``text`` stays on one line of the body's width."""
    return next((size for size in sizes if text_width(text, size, True) <= BODY_W - 24), sizes[-1])
