"""Figure builders are pure: a DataFrame in, a figure out, with the colour language and «мало данных».

The builders return plain figure data; the tests read it through ``go.Figure``, which also checks that
every property is one Plotly knows, with a valid value (the builders themselves skip that cost)."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import pytest

from charts import figures
from metrics import indicators as ind

GEOJSON = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": i, "properties": {"name": f"МО {i}", "is_schematic": True},
     "geometry": {"type": "Polygon", "coordinates": [[[30 + i, 54], [30 + i, 55], [31 + i, 55], [30 + i, 54]]]}}
    for i in (1, 2, 3)
]}


def test_colour_scale_makes_worse_darker() -> None:
    assert figures.colour_scale(ind.get("on_time_share")) == (figures.SCALE_WORSE_HIGH, True)
    assert figures.colour_scale(ind.get("overdue_open")) == (figures.SCALE_WORSE_HIGH, False)
    assert figures.colour_scale(ind.get("volume")) == (figures.SCALE_NEUTRAL, False)
    assert figures.colour_scale(ind.get("growth")) == (figures.SCALE_DIVERGING, False)


def test_choropleth_draws_every_municipality_and_greys_low_volume() -> None:
    df = pd.DataFrame({"municipality_id": [1, 2], "on_time_share": [0.9, 0.5], "on_time_share_low": [False, True],
                       "population": [1000, 2000]})
    fig = go.Figure(figures.choropleth(df, GEOJSON, ind.get("on_time_share"), "t"))
    base, data, names = fig.data
    assert names.type == "scattergeo"
    assert list(base.locations) == [1, 2, 3] and list(data.locations) == [1, 2, 3]
    assert data.z[0] == pytest.approx(90.0) and math.isnan(data.z[1]) and math.isnan(data.z[2])
    assert "мало данных" in data.text[1] and "мало данных" in data.text[2]
    assert "90,0\u00a0%" in data.text[0] and "Место: 1 из 1" in data.text[0]
    assert fig.layout.separators == ", "


def test_matrix_orders_by_volume_and_handles_empty() -> None:
    df = pd.DataFrame({"municipality_name": ["А", "А", "Б"], "category_name": ["x", "y", "x"],
                       "volume": [10, 5, 30], "volume_low": [False, False, False]})
    fig = go.Figure(figures.matrix(df, ind.get("volume"), "municipality_name", "category_name", "t"))
    assert list(fig.data[0].y) == ["А", "Б"]  # biggest at the top of the chart
    assert list(fig.data[0].x) == ["x", "y"]
    empty = go.Figure(figures.matrix(df.iloc[0:0], ind.get("volume"), "municipality_name", "category_name", "t"))
    assert "Нет обращений" in empty.layout.annotations[0].text


def test_graph_config_is_offline_and_russian() -> None:
    config = figures.graph_config("карта")
    assert config["topojsonURL"] == "/assets/topojson/" and config["locale"] == "ru"
    assert config["locales"]["ru"]["dictionary"]["Autoscale"].startswith("Автомат")


# three squares of 1°, 1° and 0,05° side: two with room for their names, one only for hover
SQUARES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": i, "properties": {"name": name},
     "geometry": {"type": "Polygon", "coordinates": [[[x, 54], [x + side, 54], [x + side, 54 + side], [x, 54 + side],
                                                      [x, 54]]]}}
    for i, name, x, side in ((1, "Вяземский", 30.0, 1.0), (2, "Монастырщинский", 31.0, 1.0),
                             (3, "город Десногорск", 32.0, 0.05))
]}


def test_growth_map_diverges_around_zero() -> None:
    df = pd.DataFrame({"municipality_id": [1, 2, 3], "growth": [-0.30, -0.12, 0.05],
                       "growth_low": [False, False, False]})
    fig = go.Figure(figures.choropleth(df, SQUARES, ind.get("growth"), "t"))
    data = fig.data[1]
    # all values fall: the neutral colour must still sit at 0 (symmetric range), never at −12 %
    assert data.zmid == 0 and data.zmin == pytest.approx(-30.0) and data.zmax == pytest.approx(30.0)
    assert data.colorscale[0][1] != data.colorscale[-1][1]


def test_share_is_coloured_against_its_target_marked_on_the_colour_bar() -> None:
    df = pd.DataFrame({"municipality_id": [1, 2, 3], "on_time_share": [0.96, 0.99, 0.93],
                       "on_time_share_low": [False, False, False]})
    raw = figures.choropleth(df, SQUARES, ind.get("on_time_share"), "t", reference=figures.MapReference(0.9, "цель"))
    data = go.Figure(raw).data[1]
    assert data.zmid == pytest.approx(90.0) and data.zmax == pytest.approx(99.0) and data.zmin == pytest.approx(81.0)
    assert any("цель 90,0" in t for t in data.colorbar.ticktext)
    assert "Цель: 90,0\u00a0%" in data.text[0]
    # every unit beats the target: every fill is on the good (blue) half of the red-to-blue scale
    fills = figures._fill_colours(raw["data"][1])
    assert all(int(c.strip("rgb()").split(",")[2]) > int(c.strip("rgb()").split(",")[0]) for c in fills)


def test_units_outside_the_scope_say_no_access() -> None:
    df = pd.DataFrame({"municipality_id": [1, 2, 3], "volume": [10, 20, 30], "volume_low": [False, False, False]})
    fig = go.Figure(figures.choropleth(df, SQUARES, ind.get("volume"), "t", allowed={1}))
    data = fig.data[1]
    assert "нет доступа" in data.text[1] and "нет доступа" in data.text[2] and "мало данных" not in data.text[1]
    assert data.z[0] == 10 and math.isnan(data.z[1]) and "20" not in data.text[1]


def test_names_on_the_map_fit_their_units_or_go_to_hover() -> None:
    df = pd.DataFrame({"municipality_id": [1, 2, 3], "volume": [1234, 20, 30], "volume_low": [False, False, False]})
    fig = go.Figure(figures.choropleth(df, SQUARES, ind.get("volume"), "t", size=(700, 400)))
    names = [t for t in fig.data if t.type == "scattergeo"][0]
    assert list(names.customdata) == [1, 2]  # the 0,05° square is far too small: hover only
    assert names.text[0].startswith("Вяземский") and "1\u00a0234" in names.text[0]
    assert all(figures.WEB_LABEL_FONT[0] <= s <= figures.WEB_LABEL_FONT[1] for s in names.textfont.size)
    assert names.hoverinfo == "skip"  # the unit's own hover (full name, value) stays the one shown


def test_short_names_cut_where_russian_maps_cut() -> None:
    assert figures.short_name("город Смоленск") == "г.\u00a0Смоленск"
    assert figures.short_name("Смоленский муниципальный округ") == "Смоленск. м.\u00a0о."
    assert figures.short_name("Монастырщинский") == "Монаст."
    assert figures.short_name("Велижский") == "Велижский"  # short enough: whole


def test_no_modebar_button_talks_to_an_outside_service() -> None:
    config = figures.graph_config("карта")
    assert config["showSendToCloud"] is False and config["showEditInChartStudio"] is False
    assert {"sendDataToCloud", "editInChartStudio", "lasso2d", "select2d"} <= set(config["modeBarButtonsToRemove"])
