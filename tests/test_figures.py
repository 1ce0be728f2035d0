"""Figure builders are pure: a DataFrame in, a figure out, with the colour language and «мало данных»."""

from __future__ import annotations

import math

import pandas as pd
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
    fig = figures.choropleth(df, GEOJSON, ind.get("on_time_share"), "t")
    base, data = fig.data
    assert list(base.locations) == [1, 2, 3] and list(data.locations) == [1, 2, 3]
    assert data.z[0] == pytest.approx(90.0) and math.isnan(data.z[1]) and math.isnan(data.z[2])
    assert "мало данных" in data.text[1] and "мало данных" in data.text[2]
    assert "90,0\u00a0%" in data.text[0] and "Место: 1 из 1" in data.text[0]
    assert fig.layout.separators == ", "


def test_matrix_orders_by_volume_and_handles_empty() -> None:
    df = pd.DataFrame({"municipality_name": ["А", "А", "Б"], "category_name": ["x", "y", "x"],
                       "volume": [10, 5, 30], "volume_low": [False, False, False]})
    fig = figures.matrix(df, ind.get("volume"), "municipality_name", "category_name", "t")
    assert list(fig.data[0].y) == ["А", "Б"]  # biggest at the top of the chart
    assert list(fig.data[0].x) == ["x", "y"]
    empty = figures.matrix(df.iloc[0:0], ind.get("volume"), "municipality_name", "category_name", "t")
    assert "Нет обращений" in empty.layout.annotations[0].text


def test_graph_config_is_offline_and_russian() -> None:
    config = figures.graph_config("карта")
    assert config["topojsonURL"] == "/assets/topojson/" and config["locale"] == "ru"
    assert config["locales"]["ru"]["dictionary"]["Autoscale"].startswith("Автомат")
