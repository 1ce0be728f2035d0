"""A day's files into a chDB copy of a DuckDB warehouse: 3 000 new appeals of the last two days, then
answers to 3 000 open appeals of the last 40 days — the incremental import, where the rollups are
appended to (not rebuilt). Prints the seconds of each import and of its rollup phase.

    python bench/engine_day_bench.py WAREHOUSE.duckdb      (e.g. python -m data demo --appeals 1000000 --db W)
"""

import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.chimport import import_to_clickhouse  # noqa: E402
from data.clickhouse import ChdbConnection, copy_warehouse  # noqa: E402
from data.mapping import load_mapping  # noqa: E402
from data.warehouse import connect  # noqa: E402

src = Path(sys.argv[1])
scratch = Path(tempfile.mkdtemp())
con = connect(src, read_only=True)
now = con.execute("SELECT max(received_at) FROM appeal").fetchall()[0][0] + dt.timedelta(hours=1)
munis = [r[0] for r in con.execute("SELECT name FROM municipality ORDER BY id LIMIT 8").fetchall()]
cats = [r[0] for r in con.execute("SELECT name FROM category ORDER BY id LIMIT 6").fetchall()]
open_rows = con.execute("""SELECT a.source_id, a.received_at, m.name, a.channel, c.name FROM appeal a
    JOIN municipality m ON m.id = a.municipality_id LEFT JOIN category c ON c.id = a.category_id
    WHERE a.answered_at IS NULL AND a.received_at > $lo ORDER BY a.received_at DESC LIMIT 3000""",
    {"lo": now - dt.timedelta(days=40)}).fetchall()
con.close()
new = scratch / "new.csv"
lines = ["source_id,received_at,municipality,channel,category"]
for i in range(3000):
    lines.append(f"DAY{i},{now - dt.timedelta(minutes=30 + i):%d.%m.%Y %H:%M},{munis[i % 8]},pos,{cats[i % 6]}")
new.write_text("\n".join(lines), encoding="utf-8")
ans = scratch / "answers.csv"
lines = ["source_id,received_at,municipality,channel,category,answered_at,closure_reason"]
for sid, rec, muni, ch_, cat in open_rows:
    lines.append(f"{sid},{rec:%Y-%m-%d %H:%M:%S.%f},{muni},{ch_},{cat or ''},{min(rec + dt.timedelta(days=1), now - dt.timedelta(minutes=1)):%Y-%m-%d %H:%M:%S},решено")
ans.write_text("\n".join(lines), encoding="utf-8")
ch = ChdbConnection(scratch / "chdb", create=True)
copy_warehouse(src, ch, rebuild=True)
for path, source in ((new, "day"), (ans, "demo")):
    t0 = time.perf_counter()
    r = import_to_clickhouse(ch, path, load_mapping(None), source=source, now=now)
    print(f"{path.name}: {time.perf_counter() - t0:.2f} s (inserted {r.inserted}, updated {r.updated}); rollups+switch "
          f"{r.phases.get('clickhouse: rollups, switch', 0):.2f} s")
shutil.rmtree(scratch)
