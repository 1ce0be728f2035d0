"""The meeting pack of one region of a multi-region warehouse (``--region``, the heat map's region):
its name on the title and in the file name, only its municipalities, its totals — checked in the PPTX
(python-pptx) and the XLSX (openpyxl) against hand-written DuckDB queries over its appeals."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pptx import Presentation

from metrics import source
from metrics.scope import REGION, Scope
from report import content, pack
from tests.test_wall_regions import _hand, served, three_regions  # noqa: F401  (the 3-region demo)
from tests.test_wall_regions import _unit_names as _names

PERIOD = "2025-09"
REGION_ID = 2


def _slide_texts(data: bytes) -> list[str]:
    texts = []
    for slide in Presentation(io.BytesIO(data)).slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                texts.append(shape.text_frame.text)
            if shape.has_table:
                texts += [cell.text for row in shape.table.rows for cell in row.cells]
            if getattr(shape, "has_chart", False) and shape.has_chart:
                texts += [str(c) for plot in shape.chart.plots for c in plot.categories]
    return texts


def test_region_pack_holds_only_that_regions_units_and_its_totals(served: Path) -> None:  # noqa: F811 - the fixture
    mine, others = _names(served, REGION_ID), _names(served, 1) | _names(served, 3)
    (total,), = _hand(served, """SELECT count(*) FROM appeal a JOIN municipality m ON m.id = a.municipality_id
                                 WHERE m.region_id = ? AND a.received_at >= DATE '2025-09-01'
                                   AND a.received_at < DATE '2025-10-01'""", [REGION_ID])

    data, name = pack.make("xlsx", PERIOD, region=str(REGION_ID))
    assert name == "Пакет_к_совещанию_Тверская_область_2025-09.xlsx"
    wb = load_workbook(io.BytesIO(data))
    assert wb["О документе"]["B2"].value == "Тверская область"
    sheet = wb["Карта"]
    rows = [r for r in sheet.iter_rows(min_row=2, values_only=True) if r[1] is not None]
    assert {r[0] for r in rows} == mine
    assert sum(r[1] for r in rows) == total
    keys = {r[0]: r[1] for r in wb["Ключевые показатели"].iter_rows(min_row=2, values_only=True)}
    assert keys["Количество обращений"] == total
    matrix = {r[0] for r in wb["Матрица"].iter_rows(min_row=2, values_only=True)} & (mine | others)
    assert matrix == mine
    # the demo's other regions have their own regional bodies only: each named after its region
    bodies = [r[1] for r in wb["Рейтинг"].iter_rows(min_row=2, values_only=True) if r[1]]
    bodies = [b for b in bodies if not b.startswith("Лучшие и отстающие")]  # the note under the table
    assert bodies and all("Тверской области" in b for b in bodies), bodies

    slides, name = pack.make("pptx", PERIOD, region="Тверская область")
    assert name.endswith("Тверская_область_2025-09.pptx")
    texts = _slide_texts(slides)
    assert "Тверская область" in texts  # the title slide
    words = " ".join(texts)
    assert not any(n in words for n in others if n.startswith("МО")), "another region's unit in the slides"
    assert not any(n in words for n in ("Вяземский", "город Смоленск", "Ярославль"))
    assert sum(n in words for n in mine) >= 20


def test_region_pack_map_draws_only_that_regions_boundaries(served: Path) -> None:  # noqa: F811 - the fixture
    """Region 1 has boundaries: its map slide has its 27 units, and no one else's."""
    built = content.build(PERIOD, region=1)
    choropleth = next(s.choropleth for s in built.sections if s.choropleth is not None)
    assert {u.name for u in choropleth.units} == _names(served, 1)
    assert built.region == "Смоленская область"
    # region 2 has none in the demo: its map is the table, never another region's outlines
    assert all(s.choropleth is None for s in content.build(PERIOD, region=2).sections)


def test_unknown_or_forbidden_region_is_a_russian_refusal(served: Path, capsys, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    with pytest.raises(content.PackError, match="неизвестный регион: «9». Есть: 1 \\(Смоленская область\\)"):
        content.build(PERIOD, region="9")
    (unit,), = _hand(served, "SELECT id FROM municipality WHERE region_id = 1 ORDER BY id LIMIT 1", [])
    with pytest.raises(content.PackError, match="вне вашей зоны доступа"):
        content.build(PERIOD, region=REGION_ID, scope=Scope.municipalities([unit], label="МО"))
    out = tmp_path / "p.xlsx"
    assert pack.main(["--db", str(served), "--period", PERIOD, "--region", "Марс", "--out", str(out)]) == 2
    assert "неизвестный регион: «Марс»" in capsys.readouterr().err
    assert pack.main(["--db", str(served), "--period", PERIOD, "--region", "RU-YAR", "--out", str(out)]) == 0
    assert load_workbook(out)["О документе"]["B2"].value == "Ярославская область"


def test_pack_button_follows_the_heat_maps_region() -> None:
    from pages.pack_button import pack_request

    assert pack_request("/", "?period=2025-09&indicator=volume&region=2") == {
        "period": "2025-09", "indicator": "volume", "region": "2"}


def test_one_region_warehouse_pack_is_unchanged(small_demo: Path) -> None:
    before = source._configured
    source.configure(small_demo)
    try:
        plain = content.build(PERIOD)
        same = content.build(PERIOD, region=1)
        assert plain.file_stem == same.file_stem == "Пакет_к_совещанию_2025-09"
        assert same.region == plain.region == "Смоленская область" and same.region_id is None
        assert plain.scope is REGION
    finally:
        source.configure(before)
