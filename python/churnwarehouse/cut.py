"""Cut a raw directory at a point in time: the raw files as an export taken then would hold them.

Rows dated at or after the cutoff are dropped (orders, events, reviews, tickets, sends, and
customers who signed up later); responses not yet known then are cleared (a ticket resolved
later is open, with no satisfaction score; a send opened, clicked or redeemed later was not
yet). Order lines follow their orders; products are kept. Used by the backtest and by the
point-in-time tests.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

#: Each table's own time column.
TIME_COLUMN = {
    "orders": "ordered_at",
    "events": "occurred_at",
    "reviews": "reviewed_at",
    "support_tickets": "opened_at",
    "marketing_sends": "sent_at",
    "customers": "signed_up_at",
}
#: Columns that only become known at a later time, by the column that says when.
NOT_YET_KNOWN = {
    "support_tickets": {"resolved_at": ["resolved_at", "satisfaction_score"]},
    "marketing_sends": {"opened_at": ["opened_at"], "clicked_at": ["clicked_at"], "redeemed_at": ["redeemed_at"]},
}


def _reader(path: Path) -> str:
    if path.suffix == ".csv":
        return f"read_csv('{path}', header = true, all_varchar = true)"
    return f"read_parquet('{path}')"


def cut_raw_directory(raw_dir: Path, out_dir: Path, cutoff: dt.datetime) -> dict[str, int]:
    """Write the raw tables of ``raw_dir`` as of ``cutoff`` (exclusive) to ``out_dir`` as Parquet.

    Timestamps are compared as stored (naive values are taken as UTC, like the warehouse's
    default ``source_timezone``). Returns the rows written per table.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = f"timestamp '{cutoff:%Y-%m-%d %H:%M:%S}'"
    written: dict[str, int] = {}
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    files = {p.stem: p for p in sorted(raw_dir.glob("*.csv"))}
    files.update({p.stem: p for p in sorted(raw_dir.glob("*.parquet"))})
    for table, path in files.items():
        scan = _reader(path)
        columns = [row[0] for row in con.execute(f"describe select * from {scan}").fetchall()]

        def as_timestamp(column: str) -> str:
            return f"try_cast({column} as timestamp)"

        select = []
        for column in columns:
            expression = column
            for time_column, cleared in NOT_YET_KNOWN.get(table, {}).items():
                if column in cleared and time_column in columns:
                    expression = f"case when {as_timestamp(time_column)} < {stamp} then {column} end as {column}"
            select.append(expression)
        where = "true"
        if table in TIME_COLUMN and TIME_COLUMN[table] in columns:
            time_value = as_timestamp(TIME_COLUMN[table])
            where = f"{time_value} < {stamp} or {time_value} is null"
        elif table == "order_items" and "orders" in files:
            orders_scan = _reader(files["orders"])
            where = (
                f"order_id in (select order_id from {orders_scan}"
                f" where {as_timestamp('ordered_at')} < {stamp} or {as_timestamp('ordered_at')} is null)"
            )
        target = out_dir / f"{table}.parquet"
        con.execute(f"copy (select {', '.join(select)} from {scan} where {where}) to '{target}' (format parquet)")
        written[table] = con.execute(f"select count(*) from read_parquet('{target}')").fetchall()[0][0]
    return written
