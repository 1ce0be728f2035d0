"""Figure builders: pure functions from a metrics DataFrame to a Plotly figure. No data access here."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from metrics.indicators import Indicator
from metrics.periods import INCOMPLETE, UNSETTLED

ASSETS = Path(__file__).resolve().parent.parent / "assets"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# One colour language: darker = worse for judged indicators, a neutral blue for "how much",
# a diverging scale for growth. All are colour-blind-safe sequential/diverging ColorBrewer scales.
SCALE_WORSE_HIGH = "OrRd"
SCALE_NEUTRAL = "Blues"
SCALE_DIVERGING = "RdBu_r"
NO_DATA_COLOUR = "#d9d9d9"


def _plotly_locale() -> dict:
    # plotly.js ships English only; the Russian dictionary comes from plotly.js-locales (assets/locale)
    return json.loads((ASSETS / "locale" / "plotly_ru.json").read_text(encoding="utf-8"))


def graph_config(filename: str) -> dict:
    """Config for every dcc.Graph: Russian texts, local topojson (no CDN), slide-quality export."""
    return {
        "locale": "ru",
        "locales": {"ru": _plotly_locale()},
        "topojsonURL": "/assets/topojson/",
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2, "width": 1600, "height": 900},
    }


# Characters no file system accepts (Windows is the strictest), control characters, and the
# separators of our titles; Cyrillic stays: every current browser and OS handles it in file names.
_ILLEGAL_IN_FILENAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
_SEPARATORS = re.compile(r"[\s·—–,;«»]+")


def export_filename(*parts: object) -> str:
    """A file name (without extension) from indicator, filters and period: «Доля_ответов_в_срок_ЖКХ_2025-10»."""
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    text = _SEPARATORS.sub("_", _ILLEGAL_IN_FILENAME.sub(" ", text))
    text = re.sub(r"_+", "_", text).strip("._ ")
    return text[:120].rstrip("._ ") or "график"


def data_note(filters: str, as_of: dt.datetime) -> str:
    """The line an exported chart carries under its title: filters and the data date."""
    return f"{filters} · данные на {as_of:%d.%m.%Y %H:%M}" if filters else f"данные на {as_of:%d.%m.%Y %H:%M}"


def mark_export(fig: go.Figure, filename: str, note: str) -> go.Figure:
    """Name the figure's PNG/SVG downloads and put filters and data date under its title.

    assets/chart_export.js reads ``layout.meta.export_filename`` for both modebar buttons; the
    subtitle travels with the figure into every export (PNG, SVG, the meeting pack).
    """
    title = fig.layout.title.text or ""
    top = (fig.layout.margin.t or 48) + (22 if title else 30)
    fig.update_layout(meta={"export_filename": filename},
                      title={"subtitle": {"text": note, "font": {"size": 12, "color": "#555555"}}},
                      margin={"t": top})
    return fig


def colour_scale(spec: Indicator) -> tuple[str, bool]:
    """(Plotly colour scale, reversed?) so that worse values are always darker / redder."""
    if spec.kind == "growth":
        return SCALE_DIVERGING, False
    if spec.higher_is_better is None:
        return SCALE_NEUTRAL, False
    return SCALE_WORSE_HIGH, bool(spec.higher_is_better)


def _display_values(spec: Indicator, values: pd.Series) -> pd.Series:
    return values * 100 if spec.number_format.endswith("%") else values


def _tick_suffix(spec: Indicator) -> str:
    return " %" if spec.number_format.endswith("%") else ""


def choropleth(df: pd.DataFrame, geojson: dict, spec: Indicator, title: str,
               geojson_url: str | None = None) -> go.Figure:
    """Municipalities coloured by one indicator; «мало данных» is grey and says so on hover."""
    ids = [f["id"] for f in geojson.get("features", [])]
    # In the browser the shapes come from a URL the browser caches: copying and serialising the
    # boundaries into every answer costs more server time than the queries. Exports embed them.
    source = geojson_url or geojson
    frame = pd.DataFrame({"municipality_id": ids}).merge(df, on="municipality_id", how="left")
    names = {f["id"]: f["properties"].get("name", "") for f in geojson.get("features", [])}
    low = frame.get(f"{spec.code}_low", pd.Series(False, index=frame.index)).fillna(True).astype(bool)
    value = frame.get(spec.code, pd.Series(np.nan, index=frame.index)).astype("float64")
    shown = _display_values(spec, value.where(~low))
    rank = value.where(~low).rank(ascending=not bool(spec.higher_is_better), method="min")
    hover = []
    for i, row in frame.iterrows():
        text = f"<b>{names.get(row['municipality_id'], '')}</b><br>{spec.label}: "
        text += "мало данных" if low.iloc[i] else spec.format(value.iloc[i])
        if not low.iloc[i] and spec.higher_is_better is not None and not np.isnan(rank.iloc[i]):
            text += f"<br>Место: {int(rank.iloc[i])} из {int(rank.notna().sum())}"
        population = row.get("population")
        if population is not None and not pd.isna(population):
            text += f"<br>Население ≈ {int(population):,}".replace(",", "\u00a0")
        hover.append(text)
    scale, reverse = colour_scale(spec)
    fig = go.Figure()
    # grey base layer: every municipality is drawn even without data
    fig.add_trace(go.Choropleth(
        geojson=source, locations=ids, z=[0] * len(ids), featureidkey="id", showscale=False,
        colorscale=[[0, NO_DATA_COLOUR], [1, NO_DATA_COLOUR]], hoverinfo="skip",
        marker={"line": {"color": "white", "width": 0.8}},
    ))
    fig.add_trace(go.Choropleth(
        geojson=source, locations=ids, z=shown, featureidkey="id", colorscale=scale, reversescale=reverse,
        text=hover, hovertemplate="%{text}<extra></extra>", marker={"line": {"color": "white", "width": 0.8}},
        colorbar={"title": {"text": spec.unit if spec.unit != "%" else ""}, "ticksuffix": _tick_suffix(spec)},
        customdata=ids,
    ))
    fig.update_geos(fitbounds="locations", visible=False, projection_type="mercator")
    fig.update_layout(
        title={"text": title, "x": 0.01}, margin={"l": 0, "r": 0, "t": 48, "b": 0}, height=560,
        font={"family": FONT}, separators=", ", uirevision="map",
    )
    add_map_attribution(fig, geojson)
    return fig


def add_map_attribution(fig: go.Figure, geojson: dict, colour: str = "#555") -> None:
    """The boundaries' licence requires their source on the map (ODbL: «© участники OpenStreetMap»).

    The text comes from the FeatureCollection's ``attribution`` member (``geo.store``).
    """
    text = geojson.get("attribution")
    if text:
        fig.add_annotation(
            text=text, x=1, y=0, xref="paper", yref="paper", xanchor="right", yanchor="bottom",
            showarrow=False, font={"size": 11, "color": colour}, name="attribution",
        )


def matrix(df: pd.DataFrame, spec: Indicator, rows: str, columns: str, title: str) -> go.Figure:
    """A rows × columns heat map (municipality × category or × sector) of one indicator."""
    if df.empty:
        return empty_figure(title, "Нет обращений для выбранных условий")
    low = df.get(f"{spec.code}_low", pd.Series(False, index=df.index)).fillna(True).astype(bool)
    data = df.assign(_value=_display_values(spec, df[spec.code].astype("float64").where(~low)))
    z = data.pivot_table(index=rows, columns=columns, values="_value", aggfunc="first", dropna=False)
    order = data.groupby(rows)["volume"].sum().sort_values(ascending=True).index
    z = z.reindex(order)
    col_order = data.groupby(columns)["volume"].sum().sort_values(ascending=False).index
    z = z[[c for c in col_order if c in z.columns]]
    scale, reverse = colour_scale(spec)
    text = z.map(lambda v: "" if pd.isna(v) else spec.format(v / 100 if spec.number_format.endswith("%") else v))
    fig = go.Figure(go.Heatmap(
        z=z.to_numpy(), x=list(z.columns), y=list(z.index), colorscale=scale, reversescale=reverse,
        text=text.to_numpy(), hovertemplate="%{y}<br>%{x}<br>" + spec.label + ": %{text}<extra></extra>",
        colorbar={"ticksuffix": _tick_suffix(spec)}, xgap=1, ygap=1, hoverongaps=False,
    ))
    fig.update_layout(
        title={"text": title, "x": 0.01}, margin={"l": 10, "r": 10, "t": 48, "b": 10},
        height=max(460, 22 * len(z.index) + 260), font={"family": FONT}, separators=", ",
        xaxis={"tickangle": -35, "automargin": True}, yaxis={"automargin": True}, plot_bgcolor=NO_DATA_COLOUR,
    )
    return fig


def empty_figure(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 16}, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title={"text": title, "x": 0.01}, xaxis={"visible": False}, yaxis={"visible": False},
                      height=320, font={"family": FONT})
    return fig


def period_flags(df: pd.DataFrame, spec: Indicator) -> list[str]:
    """Per row of a KPI series: «неполный период» (``partial``) and, for an answer-based indicator,
    «ответы ещё поступают» (not ``settled``), joined; "" for a complete, settled period."""
    partial = df["partial"].astype(bool) if "partial" in df else pd.Series(False, index=df.index)
    settled = df["settled"].astype(bool) if "settled" in df else pd.Series(True, index=df.index)
    out = []
    for p, s in zip(partial, settled, strict=True):
        notes = ([INCOMPLETE] if p else []) + ([UNSETTLED] if spec.answer_based and not s else [])
        out.append(", ".join(notes))
    return out


FLAGGED_NAME = "полая точка: неполный период или ответы ещё поступают"


def kpi_trend(df: pd.DataFrame, spec: Indicator, title: str) -> go.Figure:
    """An indicator by period with its target (dashed) and the same period a year earlier (grey).

    A period not complete, or not settled for an answer-based indicator, is a hollow point with its
    warning in the hover text: its value is still moving (``metrics.periods``)."""
    if df.empty or df["value"].isna().all():
        return empty_figure(title, "Нет данных за выбранный период")
    x = pd.to_datetime(df["period_start"])
    value = _display_values(spec, df["value"].astype("float64").where(~df["low"].fillna(True).astype(bool)))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=_display_values(spec, df["year_ago"].astype("float64")), name="год назад",
                             mode="lines", line={"color": "#9e9e9e", "width": 1.5}))
    if df["target"].notna().any():
        fig.add_trace(go.Scatter(x=x, y=_display_values(spec, df["target"].astype("float64")), name="цель",
                                 mode="lines", line={"color": "#d7191c", "dash": "dash", "width": 2}))
    flags = period_flags(df, spec)
    fig.add_trace(go.Scatter(x=x, y=value, name=spec.label, mode="lines+markers", text=flags,
                             marker={"symbol": ["circle-open" if f else "circle" for f in flags], "size": 9,
                                     "line": {"width": 2}},
                             line={"color": "#2c7bb6", "width": 3}))
    if any(flags):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=FLAGGED_NAME, hoverinfo="skip",
                                 marker={"symbol": "circle-open", "size": 9, "color": "#2c7bb6", "line": {"width": 2}}))
    fig.update_layout(title={"text": title, "x": 0.01}, height=420, margin={"l": 10, "r": 10, "t": 48, "b": 10},
                      font={"family": FONT}, separators=", ", hovermode="x unified",
                      yaxis={"ticksuffix": _tick_suffix(spec), "rangemode": "tozero"},
                      legend={"orientation": "h", "y": -0.15})
    return fig


def kpi_small_multiples(df: pd.DataFrame, spec: Indicator, title: str) -> go.Figure:
    """One small panel per sector, same axes, target dashed."""
    from plotly.subplots import make_subplots

    sectors = list(dict.fromkeys(df["sector_name"]))
    if not sectors:
        return empty_figure(title, "Нет данных")
    cols = 3
    rows = -(-len(sectors) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=sectors, shared_xaxes=True, shared_yaxes=True,
                        vertical_spacing=0.08, horizontal_spacing=0.04)
    for i, name in enumerate(sectors):
        part = df[df["sector_name"] == name]
        r, c = i // cols + 1, i % cols + 1
        x = pd.to_datetime(part["period_start"])
        y = _display_values(spec, part["value"].astype("float64").where(~part["low"].fillna(True).astype(bool)))
        flags = period_flags(part, spec)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", line={"color": "#2c7bb6", "width": 2}, name=name,
                                 text=flags, showlegend=False,
                                 marker={"symbol": ["circle-open" if f else "circle" for f in flags],
                                         "size": [7 if f else 3 for f in flags]}), row=r, col=c)
        if part["target"].notna().any():
            fig.add_trace(go.Scatter(x=x, y=_display_values(spec, part["target"].astype("float64")), mode="lines",
                                     line={"color": "#d7191c", "dash": "dash", "width": 1}, showlegend=False,
                                     hoverinfo="skip"), row=r, col=c)
    fig.update_yaxes(ticksuffix=_tick_suffix(spec), rangemode="tozero")
    fig.update_layout(title={"text": title, "x": 0.01}, height=220 * rows + 80,
                      margin={"l": 10, "r": 10, "t": 70, "b": 10}, font={"family": FONT}, separators=", ")
    return fig


def rating_top_bottom(df: pd.DataFrame, name_column: str, title: str, n: int = 10) -> go.Figure:
    """The ``n`` best (blue) and ``n`` weakest (red) ranked bodies by their composite score 0–100."""
    from metrics.rating import STATUS_RANKED

    ranked = df[df["status"] == STATUS_RANKED].sort_values("composite", ascending=False)
    if ranked.empty:
        return empty_figure(title, "Нет организаций с достаточным числом обращений")
    top, bottom = ranked.head(n), ranked.tail(n)
    shown = pd.concat([top, bottom[~bottom.index.isin(top.index)]]).sort_values("composite")
    colours = ["#2c7bb6" if i in top.index else "#d7191c" for i in shown.index]
    fig = go.Figure(go.Bar(
        x=shown["composite"], y=shown[name_column], orientation="h", marker_color=colours,
        text=shown["composite"].map(lambda v: f"{v:.0f}"), textposition="outside",
        hovertemplate="%{y}<br>Итоговая оценка: %{x:.1f}<extra></extra>",
    ))
    fig.update_layout(title={"text": title, "x": 0.01}, height=max(360, 26 * len(shown) + 100),
                      margin={"l": 10, "r": 30, "t": 48, "b": 30}, xaxis={"range": [0, 108], "title": "0–100"},
                      yaxis={"automargin": True}, font={"family": FONT}, separators=", ")
    return fig


def workload_chart(history: pd.DataFrame, forecast: pd.DataFrame, title: str) -> go.Figure:
    """One block's load by month: received (with the forecast dashed), open and overdue at month end.

    ``history``: month, received, open_end, overdue_end, complete; ``forecast``: month, forecast.
    """
    if history.empty:
        return empty_figure(title, "Нет данных о нагрузке")
    x = pd.to_datetime(history["month"])
    complete = history["complete"].astype(bool)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=history["received"].where(complete), name="поступило",
                         marker_color="#2c7bb6", hovertemplate="%{x|%m.%Y}: %{y:,.0f}<extra>поступило</extra>"))
    if (~complete).any():
        fig.add_trace(go.Bar(x=x[~complete], y=history.loc[~complete, "received"], name="поступило (месяц не закончен)",
                             marker_color="#abd9e9"))
    if not forecast.empty:
        # the dashed line starts from the last complete month so that it reads as a continuation
        last = history[complete].tail(1)
        fx = pd.concat([pd.to_datetime(last["month"]), pd.to_datetime(forecast["month"])])
        fy = pd.concat([last["received"].astype("float64"), forecast["forecast"].astype("float64")])
        fig.add_trace(go.Scatter(x=fx, y=fy, name="прогноз", mode="lines+markers",
                                 line={"color": "#d7191c", "dash": "dash", "width": 2},
                                 hovertemplate="%{x|%m.%Y}: %{y:,.0f}<extra>прогноз</extra>"))
    fig.add_trace(go.Scatter(x=x, y=history["open_end"], name="без ответа на конец месяца", mode="lines",
                             line={"color": "#fdae61", "width": 2}))
    fig.add_trace(go.Scatter(x=x, y=history["overdue_end"], name="просрочено на конец месяца", mode="lines",
                             line={"color": "#7b3294", "width": 2}))
    fig.update_layout(title={"text": title, "x": 0.01}, height=400, margin={"l": 10, "r": 10, "t": 48, "b": 10},
                      font={"family": FONT}, separators=", ", hovermode="x unified", barmode="overlay",
                      yaxis={"rangemode": "tozero", "title": {"text": "обращений"}},
                      legend={"orientation": "h", "y": -0.15})
    return fig


def roadmap_effect_chart(series: pd.DataFrame, start: object, title: str, treated_name: str) -> go.Figure:
    """Weekly appeals of the measure's municipality against the comparison municipalities (their mean
    scaled to the municipality's level before the start), the start marked."""
    if series.empty:
        return empty_figure(title, "Нет недельных данных для этой меры")
    x = pd.to_datetime(series["week"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=series["comparison_scaled"], name="сравнение (без меры, в масштабе до начала)",
                             mode="lines", line={"color": "#9e9e9e", "width": 2, "dash": "dot"}))
    fig.add_trace(go.Scatter(x=x, y=series["treated"], name=treated_name, mode="lines+markers",
                             line={"color": "#2c7bb6", "width": 3}))
    start_ts = pd.Timestamp(start)
    fig.add_shape(type="line", x0=start_ts, x1=start_ts, y0=0, y1=1, yref="paper",
                  line={"color": "#d7191c", "width": 2, "dash": "dash"})
    fig.add_annotation(x=start_ts, y=1, yref="paper", text="начало меры", showarrow=False, xanchor="left",
                       yanchor="bottom", font={"color": "#d7191c"})
    fig.update_layout(title={"text": title, "x": 0.01}, height=380, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                      font={"family": FONT}, separators=", ", hovermode="x unified",
                      yaxis={"rangemode": "tozero", "title": {"text": "обращений в неделю"}},
                      legend={"orientation": "h", "y": -0.18})
    return fig


# --- the wall display: dark theme, read from across a room -----------------------------------

WALL_BACKGROUND = "#0b1016"
WALL_TEXT = "#e6edf3"
WALL_NO_DATA = "#2b333d"
WALL_BORDER = "#0b1016"  # municipality borders in the background colour: shapes read as tiles
WALL_FONT_SIZE = 20  # px on a 1920×1080 screen; the browser scales it to the screen it runs on
# On a dark ground «more» must be brighter: light scales (OrRd, Blues) would make the best the brightest.
WALL_SCALE_NEUTRAL = [[0.0, "#15324d"], [0.5, "#2f83c4"], [1.0, "#bfe3ff"]]
WALL_SCALE_WORSE_HIGH = [[0.0, "#1e4d3a"], [0.5, "#d9a441"], [1.0, "#ff5a4e"]]
WALL_SCALE_DIVERGING = [[0.0, "#3f8fd2"], [0.5, "#2b333d"], [1.0, "#ff5a4e"]]


def wall_colour_scale(spec: Indicator) -> tuple[list, bool]:
    """The wall's dark-ground counterpart of ``colour_scale``: worse (or more) is brighter."""
    if spec.kind == "growth":
        return WALL_SCALE_DIVERGING, False
    if spec.higher_is_better is None:
        return WALL_SCALE_NEUTRAL, False
    return WALL_SCALE_WORSE_HIGH, bool(spec.higher_is_better)


def wall_choropleth(df: pd.DataFrame, geojson: dict, spec: Indicator) -> go.Figure:
    """``choropleth`` for the wall: dark ground, large type, no title (the panel has a heading),
    height from its container (``autosize``) rather than a fixed 560 px."""
    fig = choropleth(df, geojson, spec, "")
    scale, reverse = wall_colour_scale(spec)
    fig.update_traces(marker={"line": {"color": WALL_BORDER, "width": 1.5}})
    fig.data[0].update(colorscale=[[0, WALL_NO_DATA], [1, WALL_NO_DATA]])
    fig.data[1].update(colorscale=scale, reversescale=reverse, colorbar={
        "title": {"text": spec.unit if spec.unit != "%" else "", "side": "top"},
        "ticksuffix": _tick_suffix(spec), "thickness": 24, "len": 0.8, "outlinewidth": 0,
        "tickfont": {"size": WALL_FONT_SIZE, "color": WALL_TEXT},
    })
    fig.update_geos(bgcolor="rgba(0,0,0,0)")
    fig.update_annotations(selector={"name": "attribution"}, font={"size": WALL_FONT_SIZE * 0.6, "color": WALL_TEXT})
    fig.update_layout(
        title=None, height=None, autosize=True, margin={"l": 0, "r": 0, "t": 0, "b": 0},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font={"family": FONT, "size": WALL_FONT_SIZE, "color": WALL_TEXT},
    )
    return fig
