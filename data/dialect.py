"""One SQL source, two engines: the warehouse's statements are written once, in DuckDB's SQL, and
translated here for ClickHouse (DESIGN §6). No indicator formula exists in a second copy.

The translation is sqlglot's DuckDB → ClickHouse transpiler plus the few steps it does not take:

- parameters: ``$name`` becomes ClickHouse's typed ``{name:Type}``, the type read off the bound
  value (``Typed`` states it where the value cannot: an empty or all-NULL list); values stay bound;
- ``quantile_cont(x, [levels])`` becomes ``quantilesExactInclusive(levels)(x)`` (the same linear
  interpolation between the two nearest values, exact), a single level ``quantileExactInclusive``;
- ``list[i]`` becomes ``arrayElementOrNull`` (DuckDB gives NULL past the end; ClickHouse arrays are
  never NULL, a missing one is empty, and a plain index would give 0);
- ``epoch_us(ts)`` and ``epoch(a - b)`` become microsecond arithmetic on ``DateTime64(6)``;
- integer series (``range``, ``generate_series``) keep DuckDB's ends (sqlglot makes both inclusive);
  ``to_months`` / ``to_days`` become ClickHouse intervals.

The statement text is translated once (a page asks the same shapes again and again); the
parameters are typed per call. Timestamps are naive local times of the region on both engines:
ClickHouse runs with ``session_timezone = 'UTC'`` so that nothing is shifted on the way.
"""

from __future__ import annotations

import datetime as dt
import functools
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_MARK = "__param__"
_MARKED = re.compile(_MARK + r"([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Typed:
    """A parameter value with its ClickHouse type stated (``Array(Nullable(Date))``)."""

    value: object
    type: str


class DialectError(ValueError):
    """A statement or value that has no ClickHouse form."""


def to_clickhouse(sql: str, params: Mapping[str, object] | None = None,
                  as_text: bool = True) -> tuple[str, dict[str, object]]:
    """(ClickHouse SQL, parameters) for a DuckDB statement and its values: the values written as
    ClickHouse reads a query parameter (chDB), or with ``as_text=False`` left as Python values for a
    client that formats them itself (clickhouse-connect)."""
    try:
        text = _translate(sql)
    except sqlglot.errors.SqlglotError as exc:
        raise DialectError(f"запрос не переводится для ClickHouse: {str(exc)[:200]}") from exc
    values = dict(params or {})
    out: dict[str, object] = {}

    def bind(m: re.Match) -> str:
        name = m[1]
        if name not in values:
            raise DialectError(f"параметр {name} не задан")
        ch_type, text_value = bind_value(values[name])
        value = values[name]
        out[name] = text_value if as_text else (value.value if isinstance(value, Typed) else value)
        return "{" + f"{name}:{ch_type}" + "}"

    return _MARKED.sub(bind, text), out


@functools.lru_cache(maxsize=512)
def _translate(sql: str) -> str:
    marked = _PARAM.sub(lambda m: _MARK + m[1], sql)
    tree = [t.transform(_fix) for t in sqlglot.parse(marked, read="duckdb") if t is not None]
    for t in tree:
        _materialise_shared(t)
    return ";\n".join(t.sql(dialect="clickhouse") for t in tree)


def _materialise_shared(tree: exp.Expression) -> None:
    """ClickHouse inlines a CTE at every reference (the comparison joins ``i`` to itself: the whole
    computation twice); one read more than once is computed once (``AS MATERIALIZED``)."""
    ctes = list(tree.find_all(exp.CTE))
    if not ctes:
        return
    uses: dict[str, int] = {}
    for table in tree.find_all(exp.Table):
        if not table.args.get("db"):
            uses[table.name] = uses.get(table.name, 0) + 1
    for cte in ctes:
        if uses.get(cte.alias, 0) > 1:
            cte.set("materialized", True)


def _t(e: exp.Expression) -> exp.Expression:
    """A copy of a subtree with the fixes applied (a replaced node's children are not visited)."""
    return e.copy().transform(_fix)


def _micros(e: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="toUnixTimestamp64Micro", expressions=[_t(e)])


def _levels(e: exp.Expression) -> list[exp.Expression]:
    if isinstance(e, exp.Array):
        return [_t(x) for x in e.expressions]
    if isinstance(e, exp.Literal):
        return [e.copy()]
    raise DialectError("уровни квантилей должны быть числами в тексте запроса")


def _fix(node: exp.Expression) -> exp.Expression:
    """The steps sqlglot's transpiler leaves out (see the module's docstring)."""
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name == "epoch_us":
            return _micros(node.expressions[0])
        if name == "to_months":
            return exp.Anonymous(this="toIntervalMonth", expressions=[_t(node.expressions[0])])
    if isinstance(node, exp.ToDays):
        return exp.Anonymous(this="toIntervalDay", expressions=[_t(node.this)])
    if isinstance(node, exp.GenerateSeries):
        # DuckDB's range(a, b) stops before b, generate_series(a, b) includes it; ClickHouse's range
        # array stops before its end (sqlglot writes GENERATE_SERIES, a table function there)
        end = _t(node.args["end"])
        if not node.args.get("is_end_exclusive"):
            end = exp.Add(this=end, expression=exp.Literal.number(1))
        args = [_t(node.args["start"]), end, *([_t(node.args["step"])] if node.args.get("step") else [])]
        return exp.Anonymous(this="range", expressions=args)
    if isinstance(node, exp.PercentileCont):  # how sqlglot reads DuckDB's quantile_cont
        return _quantiles(node.this, node.expression)
    if isinstance(node, exp.TimeToUnix) and isinstance(node.this, exp.Sub):  # epoch(a - b): seconds
        diff = exp.Sub(this=_micros(node.this.this), expression=_micros(node.this.expression))
        return exp.Div(this=exp.Paren(this=diff), expression=exp.Literal.number("1000000.0"))
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        # both engines count from 1; sqlglot shifts a literal index to 0-based inside, an expression not
        index = node.expressions[0]
        one_based = (exp.Literal.number(int(index.name) + 1) if isinstance(index, exp.Literal) and not index.is_string
                     else _t(index))
        return exp.Anonymous(this="arrayElementOrNull", expressions=[_t(node.this), one_based])
    if isinstance(node, exp.Select):
        # ``t.col`` keeps its plain name in DuckDB; ClickHouse names it ``t.col`` when several joined
        # tables have that column
        for item in node.expressions:
            if isinstance(item, exp.Column) and item.table and not isinstance(item.this, exp.Star):
                item.replace(exp.Alias(this=item.copy(), alias=exp.to_identifier(item.name)))
        return node
    if isinstance(node, exp.Alias) and isinstance(node.this, exp.Predicate | exp.Connector | exp.Not):
        # a condition selected as a column is a boolean on DuckDB, a UInt8 on ClickHouse
        return exp.Alias(this=exp.Cast(this=_t(node.this), to=exp.DataType.build("Nullable(Bool)",
                                                                                    dialect="clickhouse")),
                         alias=node.args["alias"].copy())
    if isinstance(node, exp.DateDiff):
        unit = (node.unit.name if node.unit is not None else "day").lower()
        # DuckDB's date_diff(part, start, end) counts the boundaries crossed, as ClickHouse's dateDiff
        return exp.Anonymous(this="dateDiff", expressions=[exp.Literal.string(unit), _t(node.expression),
                                                           _t(node.this)])
    return node


def _quantiles(value: exp.Expression, levels_expr: exp.Expression) -> exp.Expression:
    levels = _levels(levels_expr)
    many = isinstance(levels_expr, exp.Array)
    name = "quantilesExactInclusive" if many else "quantileExactInclusive"
    # a parametric aggregate: name(levels)(value)
    return exp.Anonymous(this=exp.Anonymous(this=name, expressions=levels).sql(dialect="clickhouse"),
                         expressions=[_t(value)])


# --- parameter values ---------------------------------------------------------------------------


def bind_value(value: object) -> tuple[str, str]:
    """(ClickHouse type, text of the value as a query parameter)."""
    if isinstance(value, Typed):
        return value.type, _text(value.value, value.type)
    ch_type = type_of(value)
    return ch_type, _text(value, ch_type)


def type_of(value: object) -> str:
    if value is None:  # a NULL compares as NULL with anything, as in DuckDB
        return "Nullable(Nothing)"
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, numbers.Integral):
        return "Int64"
    if isinstance(value, numbers.Real):
        return "Float64"
    if isinstance(value, str):
        return "String"
    if isinstance(value, dt.datetime):
        return "DateTime64(6)"
    if isinstance(value, dt.date):
        return "Date"
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        known = [v for v in items if v is not None]
        if not known:
            if items:
                raise DialectError("тип списка из одних NULL не определить: укажите его (Typed)")
            return "Array(Int64)"
        inner = {type_of(v) for v in known}
        if inner == {"Int64", "Float64"}:
            inner = {"Float64"}
        if len(inner) != 1:
            raise DialectError(f"в одном списке значения разных типов: {sorted(inner)}")
        element = inner.pop()
        return f"Array(Nullable({element}))" if len(known) < len(items) else f"Array({element})"
    raise DialectError(f"значение {value!r} нельзя передать параметром")


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\0", "\\0"))


def _literal(value: object) -> str:
    """A value inside an array parameter, as a ClickHouse literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        return "'" + _escape(value).replace("'", "\\'") + "'"
    if isinstance(value, dt.datetime):
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
    if isinstance(value, dt.date):
        return "'" + value.isoformat() + "'"
    raise DialectError(f"значение {value!r} нельзя передать параметром")


def _text(value: object, ch_type: str) -> str:
    if ch_type.startswith("Array("):
        return "[" + ",".join(_literal(v) for v in value) + "]"  # type: ignore[union-attr]
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
