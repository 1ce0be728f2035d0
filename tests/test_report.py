"""The meeting pack on the small demo: PPTX, PDF and XLSX open, hold the expected parts and numbers."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook

from metrics import source
from metrics.periods import parse_period
from metrics.query import query
from metrics.scope import Scope
from report import content, pack

PERIOD = "2025-10"
CHARTS = 7  # map, matrix, rating, four KPI trends
FORMULA = '=HYPERLINK("http://x","y")'


@pytest.fixture(scope="module")
def demo(small_demo: Path) -> Path:
    source.configure(small_demo)
    return small_demo


@pytest.fixture(scope="module")
def files(demo: Path) -> dict[str, tuple[bytes, str]]:
    """The three formats of one pack (the charts of both documents through the same browser)."""
    return {fmt: pack.make(fmt, PERIOD) for fmt in ("pptx", "pdf", "xlsx")}


def _slide_texts(slide) -> str:
    return " ".join(shape.text_frame.text for shape in slide.shapes if shape.has_text_frame)


def test_pptx_has_a_title_slide_and_a_picture_for_every_chart(files) -> None:
    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    data, name = files["pptx"]
    assert name == "Пакет_к_совещанию_2025-10.pptx"
    prs = Presentation(io.BytesIO(data))
    assert round(prs.slide_width / prs.slide_height, 2) == round(16 / 9, 2)
    slides = list(prs.slides)
    title = _slide_texts(slides[0])
    assert "Пакет к совещанию" in title and "Смоленская область" in title and "октябрь 2025" in title
    assert "Данные на 31.10.2025" in title
    headings = [_slide_texts(s) for s in slides[1:]]
    for expected in ("Ключевые показатели", "Тепловая карта", "Муниципалитеты и отраслевые блоки",
                     "Приоритетные проблемы", "Рейтинг организаций", "Доля в срок: динамика и цель"):
        assert any(expected in h for h in headings), expected
    # every slide states its filters and data date
    assert all("весь регион" in h and "данные на 31.10.2025" in h for h in headings)
    pictures = [sh for s in slides for sh in s.shapes if sh.shape_type == MSO_SHAPE_TYPE.PICTURE]
    assert len(pictures) == CHARTS
    assert all(p.image.content_type == "image/png" and len(p.image.blob) > 20_000 for p in pictures)
    tables = [sh for s in slides for sh in s.shapes if sh.has_table]
    problems = [t.table for t in tables if t.table.cell(0, 2).text == "Проблема"]
    assert problems and all(len(t.rows) > 1 for t in problems)


def test_pdf_has_the_slides_pages_and_its_map_page_is_not_blank(files) -> None:
    import pypdfium2 as pdfium
    from pptx import Presentation
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(files["pdf"][0]))
    slides = len(Presentation(io.BytesIO(files["pptx"][0])).slides)
    assert len(reader.pages) == slides
    texts = [p.extract_text() for p in reader.pages]
    assert "Пакет к совещанию" in texts[0] and "октябрь 2025" in texts[0]
    map_page = next(i for i, t in enumerate(texts) if "Тепловая карта" in t)
    assert "данные на 31.10.2025" in texts[map_page]
    assert sum(len(p.images) for p in reader.pages) == CHARTS
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert round(float(width / height), 2) == round(16 / 9, 2)

    image = pdfium.PdfDocument(files["pdf"][0])[map_page].render(scale=1).to_pil().convert("L")
    pixels = np.asarray(image, dtype="float64")
    assert pixels.std() > 10  # a blank or one-colour page has almost no variance
    assert (pixels < 200).mean() > 0.05  # and the map covers a good part of it


def test_xlsx_has_a_sheet_per_chart_with_the_metrics_numbers(files, demo) -> None:
    data, name = files["xlsx"]
    assert name.endswith(".xlsx")
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["О документе", "Ключевые показатели", "Карта", "Матрица", "Проблемы", "Рейтинг",
                             "Доля в срок", "Удовлетворённость", "Проблема решена", "Повторные обращения"]
    sheet = wb["Карта"]
    assert sheet.freeze_panes == "A2"
    headers = [c.value for c in sheet[1]]
    assert headers[:2] == ["Муниципалитет", "Количество обращений"]
    expected = query(["volume"], by=["municipality"], period=parse_period(PERIOD))
    expected = dict(zip(expected["municipality_name"], expected["volume"], strict=True))
    rows = {r[0]: r[1] for r in sheet.iter_rows(min_row=2, max_col=2, values_only=True) if isinstance(r[1], int)}
    assert rows and rows == {k: int(v) for k, v in expected.items()}
    assert sheet.cell(row=2, column=2).number_format == "#,##0"
    assert sheet.column_dimensions["A"].width >= 15

    kpi = wb["Доля в срок"]
    first = kpi.cell(row=2, column=1)
    assert first.is_date and first.number_format == "DD.MM.YYYY"
    share = next(c for c in kpi["B"][1:] if isinstance(c.value, float))  # the first months have no data yet
    assert 0 <= share.value <= 1 and share.number_format == "0.0%"
    about = wb["О документе"]
    assert about["B5"].is_date and about["B5"].value.strftime("%d.%m.%Y") == "31.10.2025"


def test_a_category_named_like_a_formula_is_exported_as_text(small_demo: Path, tmp_path: Path) -> None:
    from data.warehouse import connect

    db = tmp_path / "formula.duckdb"
    shutil.copy(small_demo, db)
    con = connect(db)
    rows = con.execute("SELECT c.id, s.code FROM category c JOIN sector s ON s.id = c.sector_id "
                       "WHERE s.code = 'housing' ORDER BY c.id LIMIT 1").fetchall()
    con.execute("UPDATE category SET name = $n WHERE id = $i", {"n": FORMULA, "i": rows[0][0]})
    con.close()
    source.configure(db)
    try:
        data, _ = pack.make("xlsx", PERIOD, sector="housing")
    finally:
        source.configure(small_demo)
    wb = load_workbook(io.BytesIO(data))
    cells = [c for ws in wb for row in ws.iter_rows() for c in row if c.value == FORMULA]
    assert cells, "the category is in the matrix sheet"
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")]
    assert not any("<f>" in s or "<f " in s for s in sheets)  # no formula anywhere in the workbook


def test_a_municipal_scope_sees_only_its_municipality(demo) -> None:
    from metrics import catalog

    munis = catalog.municipalities()
    mid, name = int(munis.iloc[0]["municipality_id"]), str(munis.iloc[0]["municipality_name"])
    scope = Scope.municipalities({mid}, label=name)
    built = content.build(PERIOD, scope=scope)
    matrix = next(s for s in built.sections if s.sheet == "Матрица")
    assert set(matrix.data["municipality_name"]) == {name}
    with pytest.raises(content.PackError, match="вне вашей зоны доступа"):
        content.build(PERIOD, municipality=str(int(munis.iloc[1]["municipality_id"])), scope=scope)


def test_governor_report_is_monthly_with_its_own_title(demo) -> None:
    built = content.build(PERIOD, sector="ЖКХ", kind="governor")
    assert built.title == "Ежемесячный доклад губернатору" and built.filters == "ЖКХ"
    with pytest.raises(content.PackError, match="за месяц"):
        content.build("2025-Q3", kind="governor")


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "2019-01"], "нет данных за период"),
    (["--period", "вчера"], "не понят период"),
    (["--period", PERIOD, "--sector", "космос"], "неизвестный отраслевой блок"),
    (["--period", PERIOD, "--municipality", "Атлантида"], "неизвестный муниципалитет"),
])
def test_bad_input_exits_2_with_a_russian_message(demo, tmp_path: Path, capsys, args, message) -> None:
    out = tmp_path / "x.xlsx"
    assert pack.main(["--db", str(demo), *args, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_writes_the_file_and_refuses_an_unknown_format(demo, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pack.xlsx"
    assert pack.main(["--db", str(demo), "--period", PERIOD, "--municipality", "город Смоленск",
                      "--out", str(out)]) == 0
    assert load_workbook(out)["О документе"]["B4"].value == "город Смоленск"
    assert pack.main(["--db", str(demo), "--period", PERIOD, "--out", str(tmp_path / "pack.docx")]) == 2
    assert "pptx" in capsys.readouterr().err
