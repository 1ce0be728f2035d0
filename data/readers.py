"""Reading a source file (CSV, XLSX, Parquet) into a DuckDB staging table, losing no row.

Every record of the file ends up either as a row of the staging table (with the
line or sheet row it came from) or in ``Staged.rejects`` with a reason: a line a
CSV parser cannot split, a line in another encoding.  A file that cannot be used
at all raises :class:`SourceFileError` and nothing is staged.
"""

from __future__ import annotations

import csv
import datetime as dt
import mmap
import tempfile
import zipfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

STAGE_TABLE = "stg"
# Quote closing a field that spans lines is looked for this far; further means a broken quote.
MAX_LINES_PER_RECORD = 50


def drop_stage(con: duckdb.DuckDBPyConnection, name: str = STAGE_TABLE) -> None:
    """Drop a staging table or view, whichever it is (a relation's view is not listed in duckdb_views)."""
    for kind in ("VIEW", "TABLE"):
        try:
            con.execute(f"DROP {kind} IF EXISTS {name}")
        except duckdb.CatalogException:
            continue


class SourceFileError(ValueError):
    """The file cannot be used at all; the message is for a person."""


@dataclass
class Staged:
    header: list[str]
    rows: int  # rows in the staging table
    row_expr: str  # SQL expression giving the source line/row number of a staged row
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (line, reason) of unparsed records
    encoding: str = "utf-8"
    note: str = ""
    clean: frozenset[str] = frozenset()  # columns already passed through clean_text_sql

    @property
    def read(self) -> int:
        return self.rows + len(self.rejects)


def clean_text_sql(x: str) -> str:
    """SQL for NULLIF(trim(x), ''), calling trim only for the few values with an edge space: trim
    costs ~50 ms per million Cyrillic values."""
    return f"CASE WHEN {x} = '' THEN NULL WHEN starts_with({x}, ' ') OR ends_with({x}, ' ') THEN NULLIF(trim({x}), '') ELSE {x} END"


def stage_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    encoding: str | None = None,
    delimiter: str | None = None,
    keep: Callable[[list[str]], Collection[str]] | None = None,
    clean_text: bool = False,
) -> Staged:
    """Stage ``path``; ``keep(header)`` names the columns worth staging (all when None).

    ``Staged.header`` is always the file's whole header; columns not kept are never copied, which
    matters for a wide CSV (the parse of a column nobody reads is skipped). With ``clean_text`` a
    CSV read by DuckDB is staged trimmed, empty text as NULL (``Staged.clean`` lists such columns),
    so the passes over it do not trim again.
    """
    if not path.exists():
        raise SourceFileError(f"файл не найден: {path}")
    if path.is_dir():
        raise SourceFileError(f"это папка, а не файл: {path}")
    with open(path, "rb") as fh:
        head = fh.read(8)
    suffix = path.suffix.lower()
    if head.startswith(b"PAR1") or suffix in (".parquet", ".pq"):
        return _stage_parquet(con, path)
    if head.startswith(b"PK") or suffix in (".xlsx", ".xlsm"):
        return _stage_xlsx(con, path)
    return _stage_csv(con, path, encoding, delimiter, keep, clean_text)


# --- CSV -----------------------------------------------------------------------------------------


def _decode(data: bytes, forced: str | None) -> tuple[str, str, set[int]]:
    """Text, the encoding used, and line numbers (1-based) whose bytes were in another encoding."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16", set()
    if b"\x00" in data[:65536]:
        raise SourceFileError("файл не похож на CSV: в нём двоичные данные")
    if forced:
        try:
            return data.decode(forced), forced, set()
        except (LookupError, UnicodeDecodeError) as exc:
            raise SourceFileError(f"файл не читается в кодировке {forced}: {exc}") from exc
    try:
        return data.decode("utf-8-sig"), "utf-8", set()
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    good_non_ascii, bad = 0, set()
    for i, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good_non_ascii += 1
        except UnicodeDecodeError:
            bad.add(i)
    if good_non_ascii == 0:
        try:
            return data.decode("cp1251"), "cp1251", set()
        except UnicodeDecodeError as exc:
            raise SourceFileError("не удалось определить кодировку файла: ни UTF-8, ни cp1251") from exc
    # A file glued together from UTF-8 and cp1251 exports: decode each line by its own bytes and
    # reject the minority lines, so that no row enters with a guessed meaning.
    parts = [
        line.decode("cp1251", errors="replace") if i in bad else line.decode("utf-8")
        for i, line in enumerate(lines, start=1)
    ]
    text = "\n".join(parts)
    return text.removeprefix("\ufeff"), "utf-8 (с примесью cp1251)", bad


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: _count_outside_quotes(first_line, d) for d in (";", ",", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _count_outside_quotes(line: str, ch: str) -> int:
    n, inside = 0, False
    for c in line:
        if c == '"':
            inside = not inside
        elif c == ch and not inside:
            n += 1
    return n


def _parse_header(first_line: str, delimiter: str) -> list[str]:
    try:
        names = next(csv.reader([first_line], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration) as exc:
        raise SourceFileError(f"не удалось прочитать строку заголовков: {exc}") from exc
    names = [n.strip() for n in names]
    if not any(names):
        raise SourceFileError("в первой строке файла нет заголовков столбцов")
    empty = [str(i + 1) for i, n in enumerate(names) if not n]
    if empty:
        raise SourceFileError(f"пустые заголовки столбцов № {', '.join(empty)}")
    seen: set[str] = set()
    dups = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dups:
        raise SourceFileError(f"повторяющиеся заголовки столбцов: {', '.join(dups)}")
    return names


def _count_lines(path: Path) -> tuple[int, bool]:
    """Newlines in the file and whether it ends with one, without reading it into memory."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        data = np.frombuffer(mm, dtype=np.uint8)
        step = 1 << 22  # chunks that stay in the CPU cache
        newlines = sum(int(np.count_nonzero(data[i:i + step] == 10)) for i in range(0, len(data), step))
        ends_with_newline = bool(data[-1] == 10)
        del data  # the view must go before the map closes
    return newlines, ends_with_newline


def _stage_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    forced_encoding: str | None,
    forced_delim: str | None,
    keep: Callable[[list[str]], Collection[str]] | None = None,
    clean_text: bool = False,
) -> Staged:
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if not head.strip() and not path.read_bytes().strip():
        raise SourceFileError("файл пуст")
    plain_utf8 = forced_encoding in (None, "utf-8", "utf8") and not head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if plain_utf8 and b"\x00" not in head:
        # Fast path: DuckDB parses and checks UTF-8 itself; Python only reads the header and counts lines.
        first_line = head.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
        try:
            header_text = first_line.decode("utf-8")
        except UnicodeDecodeError:
            header_text = None
        if header_text is not None:
            delimiter = forced_delim or _sniff_delimiter(header_text)
            header = _parse_header(header_text, delimiter)
            newlines, ends_with_newline = _count_lines(path)
            physical = newlines + (0 if ends_with_newline else 1)
            if physical <= 1:
                _create_empty_stage(con, header)
                return Staged(header, 0, "_row", encoding="utf-8")
            staged = _stage_csv_duckdb(con, path, header, delimiter, physical, keep, clean_text)
            if staged is not None:
                return staged
    data = path.read_bytes()
    text, encoding, bad_lines = _decode(data, forced_encoding)
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    delimiter = forced_delim or _sniff_delimiter(first_line)
    header = _parse_header(first_line, delimiter)
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) <= 1:
        _create_empty_stage(con, header)
        return Staged(header, 0, "_row", encoding=encoding)
    if not bad_lines and encoding != "utf-8":
        # a clean file in another encoding: transcode once and let DuckDB parse it
        fd, name = tempfile.mkstemp(suffix=".csv")
        tmp = Path(name)
        try:
            with open(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            staged = _stage_csv_duckdb(con, tmp, header, delimiter, len(lines), keep, clean_text)
        finally:
            tmp.unlink(missing_ok=True)
        if staged is not None:
            staged.encoding = encoding
            return staged
    return _stage_csv_python(con, lines, header, delimiter, bad_lines, encoding)


def _stage_csv_duckdb(
    con: duckdb.DuckDBPyConnection,
    source: Path,
    header: list[str],
    delimiter: str,
    physical: int,
    keep: Callable[[list[str]], Collection[str]] | None = None,
    clean_text: bool = False,
) -> Staged | None:
    """DuckDB's parser. None when the file needs line-by-line care (bad, blank or multi-line records).

    A record DuckDB cannot split (wrong field count, broken quote, bytes that are not UTF-8) is an
    error in strict mode: the Python parser then reads the file and rejects just those lines.
    """
    wanted = [h for h in header if h in (set(keep(header)) if keep is not None else set(header))]
    select = ", ".join(
        f"{clean_text_sql(_quote_ident(h))} AS {_quote_ident(h)}" if clean_text else _quote_ident(h) for h in wanted
    ) or "NULL AS _none"
    try:
        drop_stage(con)
        columns = {name: "VARCHAR" for name in header}
        con.execute(
            f"""CREATE TEMP TABLE {STAGE_TABLE} AS SELECT {select} FROM read_csv(
                    $path, delim = $delim, quote = '"', escape = '"', header = true,
                    auto_detect = false, columns = $columns,
                    strict_mode = true, null_padding = false, max_line_size = 10000000)""",  # noqa: S608
            {"path": str(source), "delim": delimiter, "columns": columns},
        )
        n_rows = con.execute(f"SELECT count(*) FROM {STAGE_TABLE}").fetchall()[0][0]  # noqa: S608 - constant name
    except duckdb.Error:
        drop_stage(con)
        return None
    # Line numbers are exact only when every record is one physical line.
    if n_rows + 1 != physical:
        drop_stage(con)
        return None
    # rowids of a table made inside a transaction start at a large offset: count from the first one
    first_rowid = con.execute(f"SELECT coalesce(min(rowid), 0) FROM {STAGE_TABLE}").fetchall()[0][0]  # noqa: S608
    return Staged(header, n_rows, f"({STAGE_TABLE}.rowid - {int(first_rowid)} + 2)", encoding="utf-8",
                  clean=frozenset(wanted) if clean_text else frozenset())


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stage_csv_python(
    con: duckdb.DuckDBPyConnection,
    lines: list[str],
    header: list[str],
    delimiter: str,
    bad_lines: set[int],
    encoding: str,
) -> Staged:
    """Line-aware parser for damaged files: a broken line is rejected alone, the next line starts afresh."""
    n = len(header)
    cols: list[list[str | None]] = [[] for _ in range(n)]
    row_numbers: list[int] = []
    rejects: list[tuple[int, str]] = []
    i = 1
    while i < len(lines):
        lineno = i + 1
        line = lines[i].rstrip("\r")
        if lineno in bad_lines:
            rejects.append((lineno, "строка не в кодировке UTF-8 (в файле смешаны кодировки)"))
            i += 1
            continue
        if not line.strip():
            i += 1
            continue
        span = 1
        record = line
        while record.count('"') % 2 == 1 and span < MAX_LINES_PER_RECORD and i + span < len(lines):
            if (i + span + 1) in bad_lines:
                break
            record += "\n" + lines[i + span].rstrip("\r")
            span += 1
        fields: list[str] | None = None
        reason = ""
        if record.count('"') % 2 == 1:
            reason = "строка повреждена: незакрытая кавычка"
        else:
            try:
                fields = next(csv.reader([record], delimiter=delimiter, strict=True))
            except csv.Error:
                reason = (
                    "строка повреждена: незакрытая кавычка" if span > 1
                    else "строка повреждена: кавычка внутри поля не экранирована"
                )
            else:
                if len(fields) != n:
                    if span > 1:
                        reason = "строка повреждена: незакрытая кавычка"
                    else:
                        reason = f"неверное число полей: {len(fields)} вместо {n}"
                    fields = None
        if fields is None:
            rejects.append((lineno, reason))
            i += 1  # resume at the very next line: one broken quote must not swallow the rest
            continue
        for c, value in enumerate(fields):
            cols[c].append(value)
        row_numbers.append(lineno)
        i += span
    table = pa.table(
        {"_row": pa.array(row_numbers, pa.int64()), **{h: pa.array(cols[c], pa.string()) for c, h in enumerate(header)}}
    )
    _stage_arrow(con, table)
    return Staged(header, len(row_numbers), "_row", rejects=rejects, encoding=encoding,
                  note="файл разобран построчно из-за повреждённых строк или переносов внутри полей")


def _create_empty_stage(con: duckdb.DuckDBPyConnection, header: list[str]) -> None:
    table = pa.table({"_row": pa.array([], pa.int64()), **{h: pa.array([], pa.string()) for h in header}})
    _stage_arrow(con, table)


def _stage_arrow(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    drop_stage(con)
    con.register("_arrow_stage", table)
    try:
        con.execute(f"CREATE TEMP TABLE {STAGE_TABLE} AS SELECT * FROM _arrow_stage")  # noqa: S608 - constant name
    finally:
        con.unregister("_arrow_stage")


# --- XLSX ----------------------------------------------------------------------------------------


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel keeps every number as a float: 12345.0 is the id 12345
    text = str(value)
    return text if text.strip() else None


def _stage_xlsx(con: duckdb.DuckDBPyConnection, path: Path) -> Staged:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise SourceFileError(f"файл не читается как книга Excel (XLSX): {exc}") from exc
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header: list[str] | None = None
        header_row = 0
        for r, values in enumerate(rows, start=1):
            if any(v is not None and str(v).strip() for v in values):
                header = [str(v).strip() if v is not None else "" for v in values]
                header_row = r
                break
        if header is None:
            raise SourceFileError("файл пуст: в первом листе книги нет данных")
        while header and not header[-1]:
            header.pop()
        header = _parse_header_list(header)
        n = len(header)
        cols: list[list[str | None]] = [[] for _ in range(n)]
        row_numbers: list[int] = []
        for r, values in enumerate(rows, start=header_row + 1):
            texts = [_cell_text(v) for v in values[:n]]
            if not any(texts):
                continue
            texts += [None] * (n - len(texts))
            for c in range(n):
                cols[c].append(texts[c])
            row_numbers.append(r)
    finally:
        wb.close()
    table = pa.table(
        {"_row": pa.array(row_numbers, pa.int64()), **{h: pa.array(cols[c], pa.string()) for c, h in enumerate(header)}}
    )
    _stage_arrow(con, table)
    return Staged(header, len(row_numbers), "_row", encoding="xlsx")


def _parse_header_list(names: list[str]) -> list[str]:
    empty = [str(i + 1) for i, n in enumerate(names) if not n]
    if empty:
        raise SourceFileError(f"пустые заголовки столбцов № {', '.join(empty)}")
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise SourceFileError(f"повторяющиеся заголовки столбцов: {', '.join(dups)}")
    return names


# --- Parquet -------------------------------------------------------------------------------------


PARQUET_SLICE_MIN_ROWS = 100_000  # below this, one reader is quick enough


def _parquet_slices(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[int, int]]:
    """Row ranges [lo, hi) to read the file in, so that every DuckDB thread has work.

    DuckDB reads a Parquet file one row group per thread, and writers often put a million rows in
    one group (pyarrow's default): every pass over such a file would run on one core. Reading it
    as a union of row ranges lets each thread decode only its range (measured: 2× faster on 2 cores).
    """
    rows, groups = con.execute(
        "SELECT num_rows, num_row_groups FROM parquet_file_metadata($p)", {"p": str(path)}
    ).fetchall()[0]
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    if groups >= threads or rows < PARQUET_SLICE_MIN_ROWS:
        return [(0, rows)]
    bounds = [rows * i // threads for i in range(threads + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> Staged:
    drop_stage(con)
    # A view, not a copy: Parquet is columnar, so each pass reads only the columns it needs.
    # The relation API takes the path as a value, so no SQL text is built from it.
    try:
        rel = None
        for lo, hi in _parquet_slices(con, path):
            part = con.read_parquet(str(path), file_row_number=True).filter(
                f"file_row_number >= {int(lo)} AND file_row_number < {int(hi)}")
            rel = part if rel is None else rel.union(part)
        rel = rel.project("* EXCLUDE (file_row_number), file_row_number + 1 AS _row")
        rel.create_view(STAGE_TABLE, replace=True)
        con.execute(f"SELECT * FROM {STAGE_TABLE} LIMIT 1").fetchall()  # noqa: S608 - our constant
    except duckdb.Error as exc:
        raise SourceFileError(f"файл не читается как Parquet: {str(exc).splitlines()[0]}") from exc
    header = [r[0] for r in con.execute(f"DESCRIBE {STAGE_TABLE}").fetchall() if r[0] != "_row"]
    n_rows = con.execute(f"SELECT count(*) FROM {STAGE_TABLE}").fetchall()[0][0]  # noqa: S608 - constant name
    return Staged(header, n_rows, "_row", encoding="parquet")


def header_fields(header: list[str], fields: Collection[str], synonyms: Mapping[str, str]) -> dict[str, str]:
    """Staged column → field for a small reference file (targets, roadmap): a column is named by its
    field code or a Russian synonym (``data.names.match_key``); unknown columns are ignored. A field
    named by two columns raises ``ValueError`` with the field as its message."""
    from data.names import match_key

    out: dict[str, str] = {}
    for name in header:
        key = match_key(name)
        target = key if key in fields else synonyms.get(key)
        if target is None:
            continue
        if target in out.values():
            raise ValueError(target)
        out[name] = target
    return out
