"""The data behind every chart as an Excel workbook (openpyxl), one sheet per chart.

For Russian Excel: real numbers and dates with number formats (the file stores locale-neutral codes,
Excel shows «1 234,5» and «31.10.2025» under a Russian locale), headers from the indicator
declarations, a frozen header row and sensible column widths. No cell is ever a formula: text that
a spreadsheet would run (``=``, ``+``, ``-``, ``@``, tab, CR at the start) is stored as a string cell
with Excel's «quote prefix», so a category named ``=HYPERLINK(...)`` stays text.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from metrics import indicators as ind
from report.content import Column, Pack, Section

NUMBER_FORMATS = {"int": "#,##0", "dec1": "#,##0.0", "pct": "0.0%", "growth": "+0.0%;-0.0%;0.0%",
                  "date": "DD.MM.YYYY"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _indicator_number_format(code: str) -> str:
    spec = ind.get(code)
    if spec.number_format.endswith("%"):
        return "+0.0%;-0.0%;0.0%" if spec.number_format.startswith("+") else "0.0%"
    return "#,##0" if spec.number_format.endswith(".0f") else "#,##0.0"


def safe_text(cell, text: str) -> None:
    """Put text in a cell so that no spreadsheet evaluates it."""
    cell.value = text
    cell.data_type = "s"  # openpyxl would otherwise store a leading «=» as a formula
    if text.startswith(FORMULA_START):
        cell.quotePrefix = True


def _put(cell, value: object, column: Column, indicator: str | None) -> None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        cell.value = None
        return
    if column.kind == "text":
        safe_text(cell, str(value))
    elif column.kind == "yesno":
        safe_text(cell, "да" if bool(value) else "нет")
    elif column.kind == "date":
        cell.value = pd.Timestamp(value).date() if not isinstance(value, dt.date) else value
        cell.number_format = NUMBER_FORMATS["date"]
    elif column.kind == "indicator":
        cell.value = float(value)
        cell.number_format = _indicator_number_format(indicator) if indicator else "#,##0.0"
    else:
        cell.value = int(value) if column.kind == "int" else float(value)
        cell.number_format = NUMBER_FORMATS[column.kind]


def _sheet_title(name: str, taken: set[str]) -> str:
    base = _BAD_SHEET_CHARS.sub(" ", name).strip("'")[:31] or "Лист"
    title, n = base, 2
    while title.lower() in taken:
        suffix = f" ({n})"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(title.lower())
    return title


def _write_section(ws, section: Section, pack: Pack) -> None:
    header_font, fill = Font(bold=True), PatternFill("solid", fgColor="E9EEF5")
    for j, column in enumerate(section.columns, start=1):
        cell = ws.cell(row=1, column=j)
        safe_text(cell, column.header)
        cell.font, cell.fill = header_font, fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    widths = [max(10, min(45, len(c.header) + 2)) for c in section.columns]
    for i, record in enumerate(section.data.to_dict("records"), start=2):
        for j, column in enumerate(section.columns, start=1):
            value = record.get(column.key)
            _put(ws.cell(row=i, column=j), value, column, record.get("indicator"))
            if column.kind in ("text", "yesno") and isinstance(value, str):
                widths[j - 1] = max(widths[j - 1], min(60, len(value) + 2))
    ws.freeze_panes = "A2"
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    # where the numbers come from, under the table: filters and data date
    note_row = ws.max_row + 2
    safe_text(ws.cell(row=note_row, column=1), f"{section.title}. {pack.note}.")
    ws.cell(row=note_row, column=1).font = Font(italic=True, color="555555")


def write(pack: Pack) -> bytes:
    wb = Workbook()
    about = wb.active
    about.title = "О документе"
    rows = [("Документ", pack.title), ("Регион", pack.region), ("Период", pack.period.label),
            ("Фильтры", pack.filters)]
    for i, (key, value) in enumerate(rows, start=1):
        safe_text(about.cell(row=i, column=1), key)
        safe_text(about.cell(row=i, column=2), value)
    safe_text(about.cell(row=len(rows) + 1, column=1), "Данные на")
    stamp = about.cell(row=len(rows) + 1, column=2, value=pack.data_date.replace(microsecond=0))
    stamp.number_format = "DD.MM.YYYY HH:MM"
    about.column_dimensions["A"].width, about.column_dimensions["B"].width = 16, 60
    for cell in about["A"]:
        cell.font = Font(bold=True)
    taken = {about.title.lower()}
    for section in pack.sections:
        if not section.sheet:  # a second view of another section's data (the units ranked: the map's)
            continue
        _write_section(wb.create_sheet(_sheet_title(section.sheet, taken)), section, pack)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
