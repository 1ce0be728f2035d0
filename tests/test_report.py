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
CHARTS = 6  # native charts: units ranked, rating, four KPI trends (the map: native shapes)
BODY_EMU = int((960 - 2 * 28.8) * 12700) + 1  # slide width (960 pt) less the margins
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


def _heading(slide) -> str:
    return next(shape.text_frame.text for shape in slide.shapes if shape.has_text_frame)


def _slides(data: bytes) -> list:
    from pptx import Presentation

    return list(Presentation(io.BytesIO(data)).slides)


def _matrix_tables(slides: list) -> list:
    """The heat-map tables: slides whose heading names municipalities and blocks or categories."""
    return [sh.table for s in slides if " по муниципалитетам и " in _heading(s) for sh in s.shapes if sh.has_table]


def _charts(slides: list) -> list[tuple[str, object]]:
    return [(_heading(s), sh.chart) for s in slides for sh in s.shapes if sh.has_chart]


def test_pptx_has_native_charts_with_their_data_and_one_map_picture(files) -> None:
    from pptx import Presentation
    from pptx.enum.chart import XL_CHART_TYPE
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
    for expected in ("Ключевые показатели", "На 10 тыс. жителей — октябрь 2025",
                     "Количество обращений по муниципалитетам и отраслевым блокам",
                     "Приоритетные проблемы", "Лучшие и отстающие организации", "Доля в срок: динамика и цель"):
        assert any(expected in h for h in headings), expected
    # the map of OpenStreetMap boundaries names their source (ODbL); other charts do not
    credited = [h for h in headings if "OpenStreetMap" in h]
    assert len(credited) == 1 and "© участники OpenStreetMap" in credited[0]
    assert "На 10 тыс. жителей — октябрь 2025" in credited[0]  # the map slide
    # every slide states its filters and data date
    assert all("весь регион" in h and "данные на 31.10.2025" in h for h in headings)
    assert not [sh for s in slides for sh in s.shapes if sh.shape_type == MSO_SHAPE_TYPE.PICTURE]
    # the map: a freeform outline per unit, named after it, and its name written on the map
    from metrics import catalog

    names = set(catalog.municipalities()["municipality_name"])
    map_slide = next(s for s in slides if _heading(s) == "На 10 тыс. жителей — октябрь 2025")
    outlines = {sh.name for sh in map_slide.shapes if sh.shape_type == MSO_SHAPE_TYPE.FREEFORM}
    assert outlines == names
    written = {sh.text_frame.paragraphs[0].text for sh in map_slide.shapes if sh.has_text_frame}
    assert names <= written
    charts = _charts(slides)
    assert len(charts) == CHARTS
    kinds = {heading.split(":")[0].split(" —")[0]: chart.chart_type for heading, chart in charts}
    assert kinds["На 10 тыс. жителей по муниципалитетам"] == XL_CHART_TYPE.BAR_CLUSTERED
    assert kinds["Лучшие и отстающие организации"] == XL_CHART_TYPE.BAR_CLUSTERED
    assert kinds["Доля в срок"] in (XL_CHART_TYPE.LINE, XL_CHART_TYPE.LINE_MARKERS)  # per-series markers
    for _, chart in charts:  # each holds its data: categories and numbers, not a picture of them
        plot = chart.plots[0]
        assert len(plot.categories) > 0 and any(v is not None for v in plot.series[0].values)
    tables = [sh for s in slides for sh in s.shapes if sh.has_table]
    problems = [t.table for t in tables if t.table.cell(0, 2).text == "Проблема"]
    assert problems and all(len(t.rows) > 1 for t in problems)


def _hand_volume_by_municipality(db: Path, period_start: str, period_end: str,
                                 channel: str | None = None) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT m.name, count(*) FROM appeal a JOIN municipality m ON m.id = a.municipality_id "
            "WHERE a.received_at >= CAST($s AS TIMESTAMP) AND a.received_at < CAST($e AS TIMESTAMP) "
            "AND ($c IS NULL OR a.channel = $c) GROUP BY m.name",
            {"s": period_start, "e": period_end, "c": channel}).fetchall()
    finally:
        con.close()
    return {name: int(n) for name, n in rows}


def test_the_ranking_chart_holds_the_hand_counted_volumes(demo) -> None:
    data, _ = pack.make("pptx", PERIOD, indicator="volume", channel="pos")
    heading, chart = next((h, c) for h, c in _charts(_slides(data)) if h.startswith("Количество обращений по"))
    expected = _hand_volume_by_municipality(demo, "2025-10-01", "2025-11-01", "pos")
    plot = chart.plots[0]
    got = dict(zip(plot.categories, plot.series[0].values, strict=True))
    assert got == {k: float(v) for k, v in expected.items()}
    assert list(plot.series[0].values) == sorted(expected.values(), reverse=True)  # the largest on top


def _header_words_fit(table) -> list[str]:
    """Header words wider than their column (cell margins taken off), measured with DejaVu Sans Bold —
    wider than the Arial the slide asks for, so a word that fits here fits in PowerPoint."""
    from PIL import ImageFont

    bold = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 100)
    broken = []
    for j, column in enumerate(table.columns):
        cell = table.cell(0, j)
        room = (column.width - cell.margin_left - cell.margin_right) / 12700  # points
        for run in cell.text_frame.paragraphs[0].runs:
            size = run.font.size.pt
            for word in run.text.split():
                if bold.getlength(word) * size / 100 > room:
                    broken.append(f"{word} ({bold.getlength(word) * size / 100:.0f} > {room:.0f} pt)")
    return broken


def _names_fit(table) -> list[str]:
    """First-column names that would wrap (a name is never split over lines)."""
    from PIL import ImageFont

    regular = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 100)
    out = []
    for i in range(1, len(table.rows)):
        cell = table.cell(i, 0)
        room = (table.columns[0].width - cell.margin_left - cell.margin_right) / 12700
        size = cell.text_frame.paragraphs[0].runs[0].font.size.pt
        if regular.getlength(cell.text) * size / 100 > room:
            out.append(cell.text)
    return out


def test_no_header_breaks_inside_a_word(files) -> None:
    tables = [sh.table for s in _slides(files["pptx"][0]) for sh in s.shapes if sh.has_table]
    assert len(tables) >= 4
    for table in tables:
        assert _header_words_fit(table) == []
        assert sum(c.width for c in table.columns) <= BODY_EMU


def test_the_matrix_names_every_municipality_legibly(files, demo) -> None:
    from metrics import catalog

    names = set(catalog.municipalities()["municipality_name"])
    assert len(names) == 27
    for data in (files["pptx"][0], pack.make("pptx", PERIOD, sector="housing")[0]):
        tables = _matrix_tables(_slides(data))
        assert tables
        shown = [t.cell(i, 0).text for t in tables for i in range(1, len(t.rows))]
        assert names <= set(shown)
        for table in tables:
            assert table.cell(1, 0).text_frame.paragraphs[0].runs[0].font.size.pt >= 10
            assert _names_fit(table) == [] and _header_words_fit(table) == []
            # the slide holds the table: its rows end above the footer
            assert sum(r.height for r in table.rows) <= 7.5 * 914400 - 0.55 * 914400 - 1.35 * 914400
    # the housing matrix shows every category with appeals in the month, each under its full name
    housing = _matrix_tables(_slides(pack.make("pptx", PERIOD, sector="housing")[0]))
    headers = {t.cell(0, j).text for t in housing for j in range(1, len(t.columns))}
    cells = query(["volume"], by=["category"], period=parse_period(PERIOD), filters={"sector": ["housing"]})
    assert headers == set(cells["category_name"])


def test_every_shape_lies_on_its_slide(files, demo) -> None:
    """LibreOffice is not at hand to render the slides: their geometry is checked instead — no text
    box, table, chart or outline reaches past the slide's edge, none hides under the footer line."""
    for data in (files["pptx"][0], pack.make("pptx", PERIOD, sector="housing")[0]):
        slides = _slides(data)
        width, height = int(13.333 * 914400) + 12700, int(7.5 * 914400)
        footer = height - int(0.45 * 914400)
        for number, slide in enumerate(slides, start=1):
            for shape in slide.shapes:
                right, bottom = shape.left + shape.width, shape.top + shape.height
                assert shape.left >= 0 and shape.top >= 0 and right <= width, (number, shape.name)
                is_footer = shape.has_text_frame and shape.top >= footer
                if not is_footer and number > 1:
                    assert bottom <= footer, (number, shape.name)


def test_kpi_axes_fit_the_data_and_the_target(files) -> None:
    lines = [(h, c) for h, c in _charts(_slides(files["pptx"][0])) if ": динамика и цель" in h]
    assert len(lines) == 4
    for heading, chart in lines:
        axis = chart.value_axis
        values = [v for s in chart.plots[0].series for v in s.values if v is not None]
        names = [s.name for s in chart.plots[0].series]
        assert axis.minimum_scale <= min(values) and axis.maximum_scale >= max(values), heading
        # fitted: the data fill at least a third of the axis (a 0–100 % axis would flatten them)
        assert (max(values) - min(values)) >= (axis.maximum_scale - axis.minimum_scale) / 3, heading
        if heading.startswith("Доля в срок"):
            assert "цель" in names and axis.minimum_scale > 0


def test_the_pack_of_a_page_follows_its_indicator_and_channel(demo) -> None:
    from pages.pack_button import build, pack_request

    request = pack_request("/", "?period=2025-10&sector=all&channel=pos&indicator=on_time_share")
    assert request == {"period": "2025-10", "channel": "pos", "indicator": "on_time_share"}
    slides = _slides(build("pptx", request)[0])
    headings = [_heading(s) for s in slides[1:]]
    assert headings[1] == "Доля в срок — октябрь 2025"  # the map
    assert "Доля в срок по муниципалитетам" in headings
    assert any(h.startswith("Доля в срок по муниципалитетам и отраслевым блокам") for h in headings)
    assert all("Платформа обратной связи (ПОС)" in _slide_texts(s) for s in slides[1:])
    key = next(sh.table for sh in slides[1].shapes if sh.has_table)
    assert key.cell(1, 0).text == "Доля в срок"  # the key numbers begin with it
    trends = [h for h, _ in _charts(slides) if ": динамика и цель" in h]
    assert trends[0].startswith("Доля в срок")

    # an indicator outside the KPI trends gets its own trend, first
    kpi = pack_request("/kpi", "?indicator=response_hours_median&sector=all&municipality=all")
    built = content.build(PERIOD, indicator=kpi["indicator"])
    trend_titles = [s.title for s in built.sections if s.chart is not None and s.chart.kind == "line"]
    assert trend_titles[0].startswith("Медиана времени первой реакции")
    with pytest.raises(content.PackError, match="неизвестный показатель"):
        content.build(PERIOD, indicator="drop table")
    with pytest.raises(content.PackError, match="неизвестный канал"):
        content.build(PERIOD, channel="голубиная почта")


def test_pdf_has_the_slides_pages_and_its_map_page_is_not_blank(files) -> None:
    """The PDF has the slides' pages in the same order (charts drawn natively, the map a picture)."""
    import pypdfium2 as pdfium
    from pptx import Presentation
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(files["pdf"][0]))
    slides = len(Presentation(io.BytesIO(files["pptx"][0])).slides)
    assert len(reader.pages) == slides
    texts = [p.extract_text() for p in reader.pages]
    assert "Пакет к совещанию" in texts[0] and "октябрь 2025" in texts[0]
    map_page = next(i for i, t in enumerate(texts) if "На 10 тыс. жителей — октябрь 2025" in t)
    assert "данные на 31.10.2025" in texts[map_page]
    assert sum(len(p.images) for p in reader.pages) == 0  # the map and the charts are drawn, not pictures
    # the charts' pages carry the same categories as the slides' charts: months, units, organisations
    trend = next(t for t in texts if "Доля в срок: динамика и цель" in t)
    assert "окт 2025" in trend and "май 2025" in trend and "цель" in trend and "%" in trend
    ranking = next(t for t in texts if "На 10 тыс. жителей по муниципалитетам" in t)
    assert "город Смоленск" in ranking and "Велижский" in ranking
    assert "Велижский" in texts[map_page] and "Холм-Жирковский" in texts[map_page]  # names on the map
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
    # the map draws the whole region: the others named, «нет доступа», no value of theirs
    drawn = next(s for s in built.sections if s.choropleth is not None).choropleth
    labels = {u.name: u.label[1] for u in drawn.units}
    assert len(labels) == len(munis) and labels[name] not in ("—", "нет доступа")
    assert {v for k, v in labels.items() if k != name} == {"нет доступа"}
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
    assert pack.main(["--db", str(demo), "--period", PERIOD, "--indicator", "on_time_share", "--channel", "pos",
                      "--out", str(out)]) == 0
    workbook = load_workbook(out)
    assert workbook["О документе"]["B4"].value == "Платформа обратной связи (ПОС)"
    assert "Доля в срок" in [c.value for c in workbook["Карта"][1]]
    assert pack.main(["--db", str(demo), "--period", PERIOD, "--indicator", "nonsense", "--out", str(out)]) == 2
    assert "неизвестный показатель" in capsys.readouterr().err


@pytest.mark.browser
def test_the_menu_shows_progress_and_downloads_the_pages_pack(served_app, browser, small_demo: Path,
                                                              tmp_path: Path) -> None:
    import time

    from pypdf import PdfReader

    from tests.conftest import console_errors, wait_js

    base = served_app(small_demo)
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.get(base + "/?period=2025-10&sector=all&channel=pos&indicator=on_time_share")
    wait_js(browser, "const a = document.getElementById('pack-area'); return a && a.offsetParent !== null")
    browser.find_element("css selector", "#pack-menu").click()
    wait_js(browser, "return [...document.querySelectorAll('.dropdown-item')]"
                     ".find(e => e.textContent.includes('PDF') && e.offsetParent !== null) || null").click()
    # «Собираю пакет…» with a spinner in the menu's place while the server builds
    shown = wait_js(browser, "const e = document.getElementById('pack-building');"
                             "return e && e.offsetParent !== null ? e.textContent : null", timeout=10)
    assert "Собираю пакет" in shown
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*.pdf")) and time.monotonic() < deadline:
        time.sleep(0.2)
    pdf = next(tmp_path.glob("*.pdf"))
    texts = [p.extract_text() for p in PdfReader(pdf).pages]
    assert any("Доля в срок — октябрь 2025" in t for t in texts)  # the page's indicator on the map
    assert all("Платформа обратной связи (ПОС)" in t for t in texts[1:])  # and its channel on every page
    wait_js(browser, "const e = document.getElementById('pack-menu'); return e && e.offsetParent !== null")
    assert console_errors(browser) == []
