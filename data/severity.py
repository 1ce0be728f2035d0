"""Severity of categories (``config/severity.toml``) and the weights of the social-tension index.

The level lands on ``category.severity`` ('high' | 'medium' | 'low'). The metrics read it at query
time through the rollups' ``category_id`` (``metrics.query``), so no rollup holds a severity: a
changed level is in the next answer without rebuilding anything, and the answer caches move on with
the file (every writer switches in a new file, ``data.swap``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from data.names import match_key

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_DIR / "config" / "severity.toml"
CONFIG_ENV = "CUR_SEVERITY_CONFIG"
LEVELS: dict[str, str] = {"high": "высокая", "medium": "средняя", "low": "низкая"}
INDEX_PARTS: tuple[str, ...] = ("severe", "repeat", "surge")


class SeverityConfigError(ValueError):
    """The severity file cannot be used; the message is for a person."""


@dataclass(frozen=True)
class SeverityConfig:
    default: str
    # (sector code, match key of the category name) -> level
    levels: dict[tuple[str, str], str] = field(default_factory=dict)
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # the same keys -> the name as written
    weights: dict[str, float] = field(default_factory=dict)  # INDEX_PARTS -> weight
    source: str = ""

    def level(self, sector_code: str, name: str) -> str:
        return self.levels.get((sector_code, match_key(name)), self.default)


def config_path(path: str | Path | None = None) -> Path:
    explicit = path or os.environ.get(CONFIG_ENV)
    return Path(explicit) if explicit else DEFAULT_CONFIG


def load_config(path: str | Path | None = None) -> SeverityConfig:
    """Settings from ``path``, else env ``CUR_SEVERITY_CONFIG``, else ``config/severity.toml``."""
    file = config_path(path)
    if not file.exists():
        raise SeverityConfigError(f"файл тяжести категорий не найден: {file}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SeverityConfigError(f"{file}: файл тяжести категорий не читается: {exc}") from exc
    unknown = sorted(set(data) - {"default", "index", *LEVELS})
    if unknown:
        raise SeverityConfigError(f"{file}: неизвестные настройки {', '.join(unknown)}; допустимы default, "
                                  f"index и уровни {', '.join(LEVELS)}")
    default = data.get("default", "low")
    if default not in LEVELS:
        raise SeverityConfigError(f"{file}: default — один из уровней {', '.join(LEVELS)}, получено {default!r}")
    levels: dict[tuple[str, str], str] = {}
    names: dict[tuple[str, str], str] = {}
    for level in LEVELS:
        table = data.get(level, {})
        if not isinstance(table, dict):
            raise SeverityConfigError(f"{file}: [{level}] — таблица «код_блока = [названия категорий]»")
        for sector, listed in table.items():
            if not isinstance(listed, list) or not all(isinstance(n, str) and n.strip() for n in listed):
                raise SeverityConfigError(f"{file}: [{level}] {sector} — список названий категорий")
            for name in listed:
                key = (sector, match_key(name))
                if key in levels and levels[key] != level:
                    raise SeverityConfigError(f"{file}: категория «{name}» ({sector}) названа в двух уровнях: "
                                              f"{levels[key]} и {level}")
                levels[key], names[key] = level, name.strip()
    return SeverityConfig(default, levels, names, _weights(data.get("index", {}), file), str(file))


def _weights(raw: object, file: Path) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise SeverityConfigError(f"{file}: [index] — таблица весов {', '.join(INDEX_PARTS)}")
    unknown = sorted(set(raw) - set(INDEX_PARTS))
    if unknown:
        raise SeverityConfigError(f"{file}: [index] неизвестные веса {', '.join(unknown)}; "
                                  f"допустимы {', '.join(INDEX_PARTS)}")
    weights = {}
    for part in INDEX_PARTS:
        value = raw.get(part, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise SeverityConfigError(f"{file}: [index] {part} — неотрицательное число, получено {value!r}")
        weights[part] = float(value)
    if sum(weights.values()) <= 0:
        raise SeverityConfigError(f"{file}: [index] сумма весов должна быть больше нуля")
    return weights


def apply_to_new(con: duckdb.DuckDBPyConnection) -> None:
    """Levels from the default file for the categories that have none yet (a new warehouse, categories
    added by an import); the file is read only when there are such categories."""
    if con.execute("SELECT count(*) FROM category WHERE severity IS NULL").fetchall()[0][0]:
        apply(con, load_config(), only_unset=True)


def apply(con: duckdb.DuckDBPyConnection, config: SeverityConfig, only_unset: bool = False) -> dict[str, object]:
    """Write each category's level from ``config``; ``only_unset``: only categories without one (new
    ones from an import), so that a level set by ``python -m data severity`` stays.

    Returns the count per level and the names of the file matching no category («sector: name»)."""
    rows = con.execute(
        "SELECT c.id, s.code, c.name, c.severity FROM category c JOIN sector s ON s.id = c.sector_id ORDER BY c.id"
    ).fetchall()
    ids, values = [], []
    for cid, sector, name, current in rows:
        if only_unset and current is not None:
            continue
        ids.append(cid)
        values.append(config.level(sector, name))
    if ids:
        con.execute(
            """UPDATE category SET severity = v.level
               FROM (SELECT unnest($ids) AS id, unnest($levels) AS level) v WHERE category.id = v.id""",
            {"ids": ids, "levels": values},
        )
    known = {(sector, match_key(name)) for _, sector, name, _ in rows}
    counts = dict(con.execute("SELECT severity, count(*) FROM category GROUP BY ALL").fetchall())
    return {
        "file": config.source,
        "updated": len(ids),
        **{level: int(counts.get(level, 0)) for level in LEVELS},
        "unmatched": sorted(f"{key[0]}: {config.names[key]}" for key in set(config.levels) - known),
    }
