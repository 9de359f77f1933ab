"""Load real transaction logs into the raw-data contract (one Parquet file per table).

Two entry points, each a Python function used by the command line
(``python -m churnwarehouse.load``):

``uci`` / :func:`load_uci`
    The UCI *Online Retail* logs (Chen 2012, 2015), in either published schema
    ("Online Retail II": ``Invoice``, ``Price``, ``Customer ID``; "Online Retail":
    ``InvoiceNo``, ``UnitPrice``, ``CustomerID``), from ``.parquet``, ``.csv`` or
    ``.xlsx`` (every sheet). Writes ``orders``, ``order_items``, ``products`` and
    ``customers``.
``transactions`` / :func:`load_transactions`
    Any order or order-line log in CSV or Parquet, given a column mapping (flags or a
    YAML file). Writes ``orders`` (plus ``order_items`` and ``products`` when a
    product column is mapped).

What the loaders do and do not do
---------------------------------
* They reshape and type; they do not clean. Rows the warehouse's staging layer
  quarantines with a reason (missing customer id, quantity <= 0, negative price,
  duplicate lines inside one file) are written as they are and counted in the
  summary, so the warehouse sees them and its row counts reconcile.
* Several inputs may overlap (the two UCI releases share 2010-12-01..2010-12-09).
  De-duplication is at the *order* level: each order (invoice) is taken from exactly
  one input, the first one given that contains it. Overlapping copies are dropped
  and counted; duplicate lines inside one input are kept.
* Local timestamps are read in ``timezone`` and written as UTC
  (``TIMESTAMP WITH TIME ZONE`` in Parquet); time-zone aware inputs are converted.
* Nothing is invented: columns the data does not have (category, unit cost, email,
  sign-up date, channel, ...) are written as typed nulls.

The heavy lifting is DuckDB SQL; pandas is used only to read ``.xlsx``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from churnwarehouse.contract import ORDER_STATUSES, TABLES

__all__ = [
    "DATE_FORMATS",
    "MAPPING_KEYS",
    "NON_PRODUCT_CODES",
    "NON_PRODUCT_PREFIXES",
    "LoadError",
    "format_summary",
    "is_non_product_code",
    "load_transactions",
    "load_uci",
    "main",
    "read_mapping",
]


class LoadError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


# --------------------------------------------------------------------------------------
# UCI conventions
# --------------------------------------------------------------------------------------

#: Stock codes that are charges, fees, adjustments, samples, vouchers or tests rather
#: than goods. Checked against both UCI releases (2009-12..2011-12): every code there
#: that is not a 5-digit product code was reviewed by hand.
NON_PRODUCT_CODES: frozenset[str] = frozenset(
    {
        "POST",  # POSTAGE
        "DOT",  # DOTCOM POSTAGE
        "C2",  # CARRIAGE
        "C3",  # carriage (one line, no description)
        "M",  # Manual (price corrections, manual charges)
        "D",  # Discount (amount goes to orders.discount_amount)
        "S",  # SAMPLES
        "B",  # Adjust bad debt
        "BANK CHARGES",
        "AMAZONFEE",  # AMAZON FEE
        "CRUK",  # CRUK Commission (charity)
        "PADS",  # PADS TO MATCH ALL CUSHIONS (a 0.001 filler line)
        "ADJUST",  # Adjustment by <name> on <date>
        "ADJUST2",
        "TEST001",  # This is a test product.
        "TEST002",
        "GIFT",  # gift voucher, no description
    }
)
#: Prefixes of non-product families: gift vouchers (``GIFT_0001_10`` .. ``_90``),
#: manual adjustments and test codes.
NON_PRODUCT_PREFIXES: tuple[str, ...] = ("GIFT_", "ADJUST", "TEST")
#: Code families that are real products although their codes carry no digit
#: (``DCGSSBOY``/``DCGSSGIRL``: Dotcom gift shop party bags).
DIGITLESS_PRODUCT_PREFIXES: tuple[str, ...] = ("DCGS",)

_DISCOUNT_CODE = "D"
_UNSPECIFIED_COUNTRIES = ("Unspecified",)

#: The two published UCI schemas: contract-side name -> published column name.
UCI_SCHEMAS: dict[str, dict[str, str]] = {
    "Online Retail II": {
        "invoice": "Invoice",
        "stock_code": "StockCode",
        "description": "Description",
        "quantity": "Quantity",
        "invoice_date": "InvoiceDate",
        "price": "Price",
        "customer_id": "Customer ID",
        "country": "Country",
    },
    "Online Retail": {
        "invoice": "InvoiceNo",
        "stock_code": "StockCode",
        "description": "Description",
        "quantity": "Quantity",
        "invoice_date": "InvoiceDate",
        "price": "UnitPrice",
        "customer_id": "CustomerID",
        "country": "Country",
    },
}


def is_non_product_code(code: str | None) -> bool:
    """Tell whether a UCI stock code is a charge/fee/adjustment rather than a product.

    Rule: a code (upper-cased, stripped) is not a product when it is listed in
    :data:`NON_PRODUCT_CODES`, starts with one of :data:`NON_PRODUCT_PREFIXES`, or
    contains no digit at all, except the digit-less product families in
    :data:`DIGITLESS_PRODUCT_PREFIXES`. This is the same rule the loader applies in SQL.

    Parameters
    ----------
    code : str or None
        A stock code as found in the data.

    Returns
    -------
    bool
        True for non-product codes; False for products and for a missing code (a
        line without a code is written as is, the warehouse quarantines it).
    """
    if code is None:
        return False
    c = code.strip().upper()
    if not c:
        return False
    if c in NON_PRODUCT_CODES or c.startswith(NON_PRODUCT_PREFIXES):
        return True
    return not any(ch.isdigit() for ch in c) and not c.startswith(DIGITLESS_PRODUCT_PREFIXES)


def _non_product_sql(col: str) -> str:
    """SQL twin of :func:`is_non_product_code` for an upper-cased, stripped column."""
    listed = ", ".join(_lit(c) for c in sorted(NON_PRODUCT_CODES))
    prefixes = " or ".join(f"starts_with({col}, {_lit(p)})" for p in NON_PRODUCT_PREFIXES)
    keep = " or ".join(f"starts_with({col}, {_lit(p)})" for p in DIGITLESS_PRODUCT_PREFIXES)
    return (
        f"coalesce({col} in ({listed}) or {prefixes}"
        f" or (not regexp_matches({col}, '[0-9]') and not ({keep})), false)"
    )


# --------------------------------------------------------------------------------------
# transactions conventions
# --------------------------------------------------------------------------------------

#: Keys of a transactions mapping (YAML file or CLI flags).
MAPPING_KEYS: tuple[str, ...] = (
    "customer",
    "order",
    "timestamp",
    "amount",
    "product",
    "quantity",
    "price",
    "status",
    "timezone",
    "date_format",
)
_COLUMN_KEYS = ("customer", "order", "timestamp", "amount", "product", "quantity", "price", "status")

#: Status spellings mapped onto the contract's statuses; anything else is written
#: lower-cased as is (the warehouse quarantines it as ``invalid_status``).
STATUS_SYNONYMS: dict[str, str] = {
    **{
        s: "completed"
        for s in (
            "completed",
            "complete",
            "paid",
            "shipped",
            "delivered",
            "fulfilled",
            "closed",
            "success",
            "succeeded",
        )
    },
    **{s: "cancelled" for s in ("cancelled", "canceled", "cancel", "void", "voided", "failed")},
    **{s: "returned" for s in ("returned", "return", "refunded", "refund", "partially_refunded")},
}

# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------

#: Date formats tried, in order, on text timestamps when no format is given (ISO 8601,
#: with or without an offset, is tried first). A format is chosen when it parses every
#: value; if a day-first and a month-first format both do and disagree, the load stops
#: and asks for ``--date-format``.
DATE_FORMATS: tuple[str, ...] = (
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%y %H:%M",
    "%d/%m/%y %H:%M",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
)
_ISO = "ISO 8601"
_CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_NULL_WORDS = ("", "nan", "null", "none")
_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


@dataclass
class _Source:
    """One readable table: a file, or one sheet of a workbook."""

    label: str
    view: str
    columns: dict[str, str]  # name -> DuckDB type
    rows: int
    path: str
    sheet: str | None = None
    schema: str | None = None


@dataclass
class _Session:
    """A DuckDB connection plus the sources registered on it."""

    con: duckdb.DuckDBPyConnection
    sources: list[_Source] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)  # keep registered frames alive


def _lit(value: str) -> str:
    """Quote a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    """Quote a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _norm(name: str) -> str:
    """Normalise a column name for lenient matching ('Customer ID' == 'customerid')."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _connect() -> _Session:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    return _Session(con)


def _check_timezone(con: duckdb.DuckDBPyConnection, tz: str) -> None:
    if not _count(con, "select count(*) from pg_timezone_names() where name = ?", [tz]):
        raise LoadError(f"unknown time zone {tz!r} (use an IANA name such as 'Europe/London' or 'UTC')")


def _describe(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"describe select * from {view}").fetchall()}


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> int:
    """Run a one-number query (fetching everything, so the connection is free again)."""
    rows = con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _frame_for_duckdb(frame: Any) -> Any:
    """Make an Excel sheet safe to scan: mixed-type object columns become text."""
    import pandas as pd

    frame = frame.dropna(how="all")
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(
                lambda v: None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
            )
    return frame


def _open(session: _Session, paths: Sequence[str | os.PathLike[str]]) -> list[_Source]:
    """Register every input (file or sheet) as a DuckDB view and count its rows."""
    if not paths:
        raise LoadError("no input files given")
    con = session.con
    for raw_path in paths:
        path = Path(raw_path)
        name = path.name
        if not path.exists():
            raise LoadError(f"file not found: {path}")
        if path.is_dir():
            raise LoadError(f"{path} is a directory; give the data files themselves")
        lower = name.lower()
        view = f"src_{len(session.sources)}"
        if lower.endswith(_PARQUET_SUFFIXES):
            try:
                con.execute(f"create view {view} as select * from read_parquet({_lit(str(path))})")
                rows = _count(con, f"select count(*) from {view}")
            except duckdb.Error as err:
                raise LoadError(f"cannot read {name} as Parquet: {_first_line(err)}") from None
            session.sources.append(_Source(name, view, _describe(con, view), rows, str(path)))
        elif lower.endswith(_CSV_SUFFIXES):
            session.sources.append(_open_csv(con, path, view))
        elif lower.endswith(_EXCEL_SUFFIXES):
            session.sources.extend(_open_excel(session, path))
        else:
            raise LoadError(f"unknown format for {name}: expected .parquet, .csv (or .tsv, .csv.gz) or .xlsx")
        for src in session.sources:
            if src.path == str(path) and src.rows == 0:
                raise LoadError(f"empty input: {src.label} has no data rows")
    return session.sources


def _open_csv(con: duckdb.DuckDBPyConnection, path: Path, view: str) -> _Source:
    if path.stat().st_size == 0:
        raise LoadError(f"empty input: {path.name} is an empty file")
    last: Exception | None = None
    for encoding in ("utf-8", "latin-1"):
        reader = (
            f"read_csv({_lit(str(path))}, header = true, all_varchar = true, encoding = {_lit(encoding)})"
        )
        try:
            con.execute(f"create or replace view {view} as select * from {reader}")
            rows = _count(con, f"select count(*) from {view}")
            return _Source(path.name, view, _describe(con, view), rows, str(path))
        except duckdb.Error as err:
            last = err
            if "utf-8" not in str(err).lower() and "unicode" not in str(err).lower():
                break
    raise LoadError(f"cannot read {path.name} as CSV: {_first_line(last or Exception())}")


def _open_excel(session: _Session, path: Path) -> list[_Source]:
    import pandas as pd

    try:
        sheets = pd.read_excel(path, sheet_name=None)
    except Exception as err:  # openpyxl raises many types for corrupt workbooks
        raise LoadError(f"cannot read {path.name} as Excel: {_first_line(err)}") from None
    out: list[_Source] = []
    for sheet, frame in sheets.items():
        frame = _frame_for_duckdb(frame)
        if frame.empty:
            continue  # blank sheets are common in workbooks
        view = f"src_{len(session.sources) + len(out)}"
        session.con.register(view, frame)
        session.frames.append(frame)
        rows = len(frame)
        out.append(
            _Source(f"{path.name}[{sheet}]", view, _describe(session.con, view), rows, str(path), str(sheet))
        )
    if not out:
        raise LoadError(f"empty input: no sheet of {path.name} has data rows")
    return out


def _resolve(columns: Mapping[str, str], wanted: str) -> str | None:
    """Find a column by exact name, else by normalised name (case, spaces, '_')."""
    if wanted in columns:
        return wanted
    matches = [c for c in columns if _norm(c) == _norm(wanted)]
    return matches[0] if len(matches) == 1 else None


def _is_numeric(dtype: str) -> bool:
    return dtype.upper().startswith(_NUMERIC_TYPES)


def _text(col: str) -> str:
    """A column as trimmed text with the usual null spellings turned into NULL."""
    words = ", ".join(_lit(w) for w in _NULL_WORDS)
    return f"(case when lower(trim(cast({col} as varchar))) in ({words}) then null else trim(cast({col} as varchar)) end)"


def _id_expr(col: str, dtype: str) -> str:
    """An identifier as text: 12346.0 (a float column, or text from one) -> '12346'."""
    if _is_numeric(dtype):
        if dtype.upper() in ("FLOAT", "DOUBLE") or dtype.upper().startswith("DECIMAL"):
            return (
                f"(case when {col} is null or isnan(cast({col} as double)) then null"
                f" when {col} = trunc({col}) then cast(cast({col} as hugeint) as varchar)"
                f" else cast({col} as varchar) end)"
            )
        return f"cast({col} as varchar)"
    t = _text(col)
    return f"(case when regexp_matches({t}, '^[0-9]+\\.0+$') then regexp_replace({t}, '\\.0+$', '') else {t} end)"


def _number_expr(col: str, dtype: str, integer: bool = False) -> str:
    """A number as DOUBLE (or INTEGER when ``integer``); text that does not parse -> NULL."""
    if _is_numeric(dtype):
        value = f"cast({col} as double)"
    else:
        value = f"try_cast({_text(col)} as double)"
    value = f"(case when isnan({value}) then null else {value} end)"
    if integer:
        return f"(case when {value} = trunc({value}) and abs({value}) < 2147483648 then cast({value} as integer) end)"
    return value


def _present(col: str, dtype: str) -> str:
    """SQL condition: the raw value is there (not null, not an empty/NaN spelling)."""
    if _is_numeric(dtype):
        return f"({col} is not null and not isnan(cast({col} as double)))"
    return f"({_text(col)} is not null)"


def _check_parsed(
    session: _Session,
    src: _Source,
    column: str,
    raw: str,
    present: str,
    parsed: str,
    what: str,
    hint: str = "",
) -> None:
    """Stop with a message when present values do not parse."""
    sql = (
        f"select count(*), list(distinct cast({raw} as varchar))[1:5]"
        f" from {src.view} where {present} and ({parsed}) is null"
    )
    bad, examples = session.con.execute(sql).fetchall()[0]
    if bad:
        shown = ", ".join(repr(e) for e in (examples or [])[:5])
        raise LoadError(
            f"{src.label}: {bad:,} of {src.rows:,} rows have unparseable {what} in column {column!r}"
            f" (e.g. {shown}){hint}"
        )


_V = "date_text"  # placeholder column of the date candidates


def _date_candidates(tz: str, date_format: str | None) -> list[tuple[str, str]]:
    """(name, SQL expression over the text column ``date_text`` giving TIMESTAMPTZ)."""

    def strptime(fmt: str) -> str:
        if "%z" in fmt or "%Z" in fmt:
            return f"try_strptime({_V}, {_lit(fmt)})"
        return f"timezone({_lit(tz)}, try_strptime({_V}, {_lit(fmt)}))"

    if date_format:
        return [(date_format, strptime(date_format))]
    offset = r"[0-9]:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*(Z|z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)$"
    iso = (
        f"(case when regexp_matches({_V}, {_lit(offset)}) then try_cast({_V} as timestamptz)"
        f" else timezone({_lit(tz)}, try_cast({_V} as timestamp)) end)"
    )
    return [(_ISO, iso)] + [(fmt, strptime(fmt)) for fmt in DATE_FORMATS]


def _timestamp_expr(
    session: _Session, src: _Source, column: str, tz: str, date_format: str | None
) -> tuple[str, str]:
    """Build the UTC TIMESTAMPTZ expression for a date column; returns (expr, format name).

    Naive timestamps are read in ``tz``; aware ones are kept as instants. Text is parsed
    with ``date_format`` or the first of ``ISO 8601`` + :data:`DATE_FORMATS` that
    parses every distinct value (detection runs on distinct values, so it is cheap).
    """
    col = _ident(column)
    dtype = src.columns[column].upper()
    if dtype in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return col, "timestamp with time zone"
    if dtype.startswith("TIMESTAMP") or dtype == "DATE":
        return f"timezone({_lit(tz)}, cast({col} as timestamp))", f"local timestamps ({tz})"
    con = session.con
    text = _text(col)
    con.execute(
        f"create or replace temp table date_values as"
        f" select distinct {text} as {_V} from {src.view} where {text} is not null"
    )
    n_distinct = _count(con, "select count(*) from date_values")
    hint = "" if date_format else "; pass --date-format (strptime codes, e.g. '%d/%m/%Y %H:%M')"
    tried = [
        (_count(con, f"select count(*) from date_values where {expr} is not null"), name, expr)
        for name, expr in _date_candidates(tz, date_format)
    ]
    full = [(name, expr) for n, name, expr in tried if n == n_distinct]
    if full:
        chosen_name, chosen = full[0]
        for other_name, other in full[1:]:
            if _count(con, f"select count(*) from date_values where ({chosen}) is distinct from ({other})"):
                raise LoadError(
                    f"{src.label}: dates in column {column!r} are ambiguous: both {chosen_name!r} and"
                    f" {other_name!r} read every value, differently; pass --date-format"
                )
    else:
        _, chosen_name, chosen = max(tried, key=lambda t: t[0])
    row_expr = chosen.replace(_V, text)
    _check_parsed(session, src, column, col, _present(col, dtype), row_expr, "dates", hint)
    return row_expr, chosen_name


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------

_DUCKDB_TYPES = {
    "varchar": "varchar",
    "double": "double",
    "integer": "integer",
    "boolean": "boolean",
    "timestamp": "timestamptz",  # written as UTC instants
}


def _write_table(
    con: duckdb.DuckDBPyConnection, table: str, source: str, out_dir: Path, exprs: Mapping[str, str]
) -> int:
    """Write ``source`` (a relation holding some contract columns) as ``<table>.parquet``.

    Every contract column is written, in contract order and type; columns not in
    ``exprs`` are typed nulls.
    """
    cols = []
    for column in TABLES[table].columns:
        dtype = _DUCKDB_TYPES[column.data_type]
        value = exprs.get(column.name, "null")
        cols.append(f"cast({value} as {dtype}) as {column.name}")
    final = out_dir / f"{table}.parquet"
    tmp = out_dir / f".{table}.parquet.tmp"
    con.execute(
        f"copy (select {', '.join(cols)} from {source}) to {_lit(str(tmp))} (format parquet, compression zstd)"
    )
    os.replace(tmp, final)
    return _count(con, f"select count(*) from {source}")


def _prepare_out(out_dir: str | os.PathLike[str], writing: Sequence[str]) -> tuple[Path, list[str]]:
    """Create the output folder and list contract tables already there that this load
    does not write (left alone, but reported: the warehouse will read them too)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LoadError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    others = [
        f"{table}{suffix}"
        for table in TABLES
        for suffix in (".parquet", ".csv")
        if (out / f"{table}{suffix}").exists() and not (table in writing and suffix == ".parquet")
    ]
    return out, others


# --------------------------------------------------------------------------------------
# uci
# --------------------------------------------------------------------------------------


def _detect_uci_schema(src: _Source) -> dict[str, str]:
    """Map contract-side names to this source's columns, or stop naming what is missing."""
    misses: list[tuple[int, str, list[str]]] = []
    for schema, wanted in UCI_SCHEMAS.items():
        found = {key: _resolve(src.columns, col) for key, col in wanted.items()}
        missing = [wanted[k] for k, v in found.items() if v is None]
        if not missing:
            src.schema = schema
            return {k: v for k, v in found.items() if v is not None}
        misses.append((len(missing), schema, missing))
    misses.sort()
    detail = "; ".join(f"for {schema}: missing {', '.join(m)}" for _, schema, m in misses)
    raise LoadError(
        f"{src.label} is in neither UCI Online Retail schema ({detail});"
        f" available columns: {', '.join(src.columns)}"
    )


def _stage_uci(session: _Session, src: _Source, index: int, tz: str, date_format: str | None) -> str:
    cols = _detect_uci_schema(src)
    q = {k: _ident(v) for k, v in cols.items()}
    t = {k: src.columns[v] for k, v in cols.items()}
    quantity = _number_expr(q["quantity"], t["quantity"], integer=True)
    price = _number_expr(q["price"], t["price"])
    _check_parsed(
        session,
        src,
        cols["quantity"],
        q["quantity"],
        _present(q["quantity"], t["quantity"]),
        quantity,
        "quantities (whole numbers expected)",
    )
    _check_parsed(session, src, cols["price"], q["price"], _present(q["price"], t["price"]), price, "prices")
    ordered_at, date_fmt = _timestamp_expr(session, src, cols["invoice_date"], tz, date_format)
    unspecified = ", ".join(_lit(c) for c in _UNSPECIFIED_COUNTRIES)
    table = f"stage_{index}"
    session.con.execute(f"""
        create temp table {table} as
        select
            {index} as source_index,
            {_id_expr(q['invoice'], t['invoice'])} as invoice,
            upper({_id_expr(q['stock_code'], t['stock_code'])}) as stock_code,
            {_text(q['description'])} as description,
            {quantity} as quantity,
            {price} as price,
            {_id_expr(q['customer_id'], t['customer_id'])} as customer_id,
            (case when {_text(q['country'])} in ({unspecified}) then null else {_text(q['country'])} end) as country,
            {ordered_at} as ordered_at
        from {src.view}
        """)
    return date_fmt


def load_uci(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    timezone: str = "Europe/London",
    date_format: str | None = None,
) -> dict[str, Any]:
    """Load UCI Online Retail logs (either schema, any mix of files) into the raw contract.

    Parameters
    ----------
    paths : sequence of path-like
        ``.parquet``, ``.csv`` or ``.xlsx`` files (every sheet of a workbook is read).
        Order matters for overlaps: an invoice is taken from the first input holding it.
    out_dir : path-like
        Folder receiving ``orders``, ``order_items``, ``products`` and ``customers``
        (``.parquet``, replaced if present). Other contract tables found there are
        left alone and listed in the summary.
    timezone : str, default "Europe/London"
        IANA zone of the shop's local ``InvoiceDate``; written as UTC.
    date_format : str, optional
        strptime format of text dates; detected when omitted.

    Returns
    -------
    dict
        The load summary (see :func:`format_summary`).

    Raises
    ------
    LoadError
        Missing or unreadable file, unknown format, a file in neither schema,
        unparseable dates or numbers, empty input, unknown time zone.
    """
    started = time.perf_counter()
    session = _connect()
    con = session.con
    _check_timezone(con, timezone)
    sources = _open(session, paths)
    date_formats = {}
    for i, src in enumerate(sources):
        date_formats[src.label] = _stage_uci(session, src, i, timezone, date_format)
    union = " union all ".join(f"select * from stage_{i}" for i in range(len(sources)))
    non_product = _non_product_sql("stock_code")
    con.execute(f"""
        create temp table lines as
        select
            *,
            source_index = min(source_index) over (partition by invoice) as is_owner,
            upper(left(coalesce(invoice, ''), 1)) = 'A' as is_adjustment,
            upper(left(coalesce(invoice, ''), 1)) = 'C' as is_cancellation,
            not {non_product} as is_product
        from ({union})
        """)
    con.execute("create temp table kept as select * from lines where is_owner and not is_adjustment")
    con.execute(f"""
        create temp table invoices as
        select
            invoice as order_id,
            min(customer_id) as customer_id,
            min(ordered_at) as ordered_at,
            sum(quantity * price) as line_total,
            sum(abs(quantity * price)) filter (where stock_code = {_lit(_DISCOUNT_CODE)}) as discount_amount,
            bool_or(is_cancellation) as is_cancellation,
            min(country) as country,
            count(distinct customer_id) as customer_count
        from kept
        group by invoice
        """)
    con.execute("""
        create temp table orders_out as
        with purchases as (
            select kept.customer_id, kept.stock_code, min(invoices.ordered_at) as first_bought_at
            from kept
            inner join invoices on kept.invoice = invoices.order_id
            where not kept.is_cancellation and kept.is_product and kept.quantity > 0
                and kept.customer_id is not null
            group by all
        ),
        returned as (
            select distinct invoices.order_id
            from invoices
            inner join kept on kept.invoice = invoices.order_id
            inner join purchases
                on purchases.customer_id = invoices.customer_id
                and purchases.stock_code = kept.stock_code
            where invoices.is_cancellation and kept.is_product
                and purchases.first_bought_at < invoices.ordered_at
        )
        select
            invoices.order_id,
            invoices.customer_id,
            invoices.ordered_at,
            round(case when invoices.is_cancellation then abs(invoices.line_total) else invoices.line_total end, 6)
                as order_total,
            case
                when not invoices.is_cancellation then 'completed'
                when returned.order_id is not null then 'returned'
                else 'cancelled'
            end as status,
            round(invoices.discount_amount, 6) as discount_amount,
            'GBP' as currency,
            invoices.country
        from invoices
        left join returned on invoices.order_id = returned.order_id
        """)
    con.execute("""
        create temp table items_out as
        select
            invoice as order_id,
            stock_code as product_id,
            case when is_cancellation then abs(quantity) else quantity end as quantity,
            price as unit_price
        from kept
        where is_product
        """)
    con.execute("""
        create temp table products_out as
        with described as (
            select stock_code as product_id, description, count(*) as line_count
            from kept
            where is_product and stock_code is not null
            group by all
        )
        select product_id, description as product_name
        from described
        qualify row_number() over (
            partition by product_id order by description is null, line_count desc, description
        ) = 1
        """)
    con.execute("""
        create temp table customers_out as
        with countries as (
            select customer_id, country, count(*) as order_count, max(ordered_at) as last_ordered_at
            from orders_out
            where customer_id is not null
            group by all
        )
        select customer_id, country
        from countries
        qualify row_number() over (
            partition by customer_id
            order by country is null, order_count desc, last_ordered_at desc, country
        ) = 1
        """)

    out, others = _prepare_out(out_dir, ("orders", "order_items", "products", "customers"))
    order_cols = (
        "order_id",
        "customer_id",
        "ordered_at",
        "order_total",
        "status",
        "discount_amount",
        "currency",
    )
    written = {
        "orders": _write_table(con, "orders", "orders_out", out, {c: c for c in order_cols}),
        "order_items": _write_table(
            con, "order_items", "items_out", out, {c: c for c in TABLES["order_items"].column_names}
        ),
        "products": _write_table(
            con, "products", "products_out", out, {"product_id": "product_id", "product_name": "product_name"}
        ),
        "customers": _write_table(
            con, "customers", "customers_out", out, {"customer_id": "customer_id", "country": "country"}
        ),
    }

    def one(sql: str) -> int:
        return _count(con, sql)

    overlap_lines = one("select count(*) from lines where not is_owner")
    overlap_invoices = one("select count(distinct invoice) from lines where not is_owner")
    adjust_lines = one("select count(*) from lines where is_owner and is_adjustment")
    adjust_invoices = one("select count(distinct invoice) from lines where is_owner and is_adjustment")
    non_product_lines = one("select count(*) from kept where not is_product")
    by_code = dict(
        con.execute(
            "select stock_code, count(*) from kept where not is_product group by all order by 2 desc, 1"
        ).fetchall()
    )
    statuses = dict(con.execute("select status, count(*) from orders_out group by all order by 1").fetchall())
    summary: dict[str, Any] = {
        "command": "uci",
        "out_dir": str(out),
        "timezone": timezone,
        "files": [
            {"file": s.label, "schema": s.schema, "rows": s.rows, "dates": date_formats[s.label]}
            for s in sources
        ],
        "rows_read": sum(s.rows for s in sources),
        "overlap": {
            "lines_deduplicated": overlap_lines,
            "invoices_deduplicated": overlap_invoices,
            "rule": "each invoice taken from the first input that contains it",
        },
        "written": {**written},
        "order_statuses": statuses,
        "skipped_lines": {
            "overlap_duplicate": overlap_lines,
            "adjust_bad_debt": adjust_lines,
            "non_product_line": non_product_lines,
        },
        "skipped_invoices": {"overlap_duplicate": overlap_invoices, "adjust_bad_debt": adjust_invoices},
        "non_product_codes": by_code,
        "kept_for_quarantine": {
            "orders_missing_customer_id": one("select count(*) from orders_out where customer_id is null"),
            "order_items_quantity_not_positive": one(
                "select count(*) from kept where is_product and not is_cancellation and not (quantity > 0)"
            ),
            "order_items_negative_price": one("select count(*) from kept where is_product and price < 0"),
            "orders_negative_total": one("select count(*) from orders_out where order_total < 0"),
            "lines_missing_date": one("select count(*) from kept where ordered_at is null"),
            "invoices_with_several_customers": one("select count(*) from invoices where customer_count > 1"),
        },
        "other_tables_in_out_dir": others,
    }
    summary["reconciled"] = summary["rows_read"] == written["order_items"] + sum(
        summary["skipped_lines"].values()
    )
    summary["seconds"] = round(time.perf_counter() - started, 2)
    con.close()
    return summary


# --------------------------------------------------------------------------------------
# transactions
# --------------------------------------------------------------------------------------


def read_mapping(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a YAML column mapping for :func:`load_transactions`.

    Parameters
    ----------
    path : path-like
        YAML file with some of the keys in :data:`MAPPING_KEYS`, e.g.
        ``{customer: user_id, order: order_no, timestamp: created, amount: total}``.

    Returns
    -------
    dict of str to str
    """
    import yaml

    p = Path(path)
    if not p.exists():
        raise LoadError(f"mapping file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise LoadError(f"cannot read mapping {p.name}: {_first_line(err)}") from None
    if data is None:
        raise LoadError(f"empty input: mapping file {p.name} is empty")
    if not isinstance(data, dict):
        raise LoadError(f"mapping {p.name} must be a YAML mapping of keys to column names")
    unknown = sorted(str(k) for k in data if k not in MAPPING_KEYS)
    if unknown:
        raise LoadError(
            f"mapping {p.name} has unknown keys {', '.join(unknown)}; allowed: {', '.join(MAPPING_KEYS)}"
        )
    return {str(k): str(v) for k, v in data.items() if v is not None}


def _validate_mapping(mapping: Mapping[str, str | None]) -> dict[str, str]:
    m = {k: v for k, v in mapping.items() if v not in (None, "")}
    unknown = sorted(k for k in m if k not in MAPPING_KEYS)
    if unknown:
        raise LoadError(f"unknown mapping keys {', '.join(unknown)}; allowed: {', '.join(MAPPING_KEYS)}")
    missing = [k for k in ("customer", "timestamp") if k not in m]
    if "amount" not in m and not ("quantity" in m and "price" in m):
        missing.append("amount (or quantity and price)")
    if missing:
        raise LoadError(
            f"the mapping lacks {', '.join(missing)}: give them as flags (--customer COL ...) or as keys in --map"
        )
    return {k: str(v) for k, v in m.items()}


def _stage_transactions(
    session: _Session, src: _Source, index: int, mapping: Mapping[str, str], tz: str, date_format: str | None
) -> str:
    cols: dict[str, str] = {}
    missing = []
    for key in _COLUMN_KEYS:
        if key in mapping:
            found = _resolve(src.columns, mapping[key])
            if found is None:
                missing.append(f"{mapping[key]} (--{key})")
            else:
                cols[key] = found
    if missing:
        raise LoadError(
            f"{src.label}: mapped column(s) not found: {', '.join(missing)};"
            f" available columns: {', '.join(src.columns)}"
        )
    q = {k: _ident(v) for k, v in cols.items()}
    t = {k: src.columns[v] for k, v in cols.items()}
    for key, integer in (("amount", False), ("quantity", True), ("price", False)):
        if key in cols:
            what = "quantities (whole numbers expected)" if integer else f"{key}s"
            _check_parsed(
                session,
                src,
                cols[key],
                q[key],
                _present(q[key], t[key]),
                _number_expr(q[key], t[key], integer),
                what,
            )
    ordered_at, date_fmt = _timestamp_expr(session, src, cols["timestamp"], tz, date_format)

    def opt(key: str, dtype: str, integer: bool = False) -> str:
        """The mapped column, normalised, or a typed null when it is not mapped."""
        if key not in cols:
            return f"cast(null as {dtype})"
        if dtype == "varchar":
            return _id_expr(q[key], t[key])
        return _number_expr(q[key], t[key], integer)

    status_cases = " ".join(f"when {_lit(k)} then {_lit(v)}" for k, v in STATUS_SYNONYMS.items())
    status = (
        f"(case lower({_text(q['status'])}) {status_cases} else lower({_text(q['status'])}) end)"
        if "status" in cols
        else "null"
    )
    session.con.execute(f"""
        create temp table stage_{index} as
        select
            {index} as source_index,
            {_id_expr(q['customer'], t['customer'])} as customer_id,
            {opt('order', 'varchar')} as order_key,
            {ordered_at} as ordered_at,
            {opt('amount', 'double')} as amount,
            {opt('product', 'varchar')} as product_id,
            {opt('quantity', 'integer', integer=True)} as quantity,
            {opt('price', 'double')} as price,
            cast({status} as varchar) as status
        from {src.view}
        """)
    return date_fmt


def load_transactions(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    mapping: Mapping[str, str | None],
    timezone: str | None = None,
    date_format: str | None = None,
) -> dict[str, Any]:
    """Load any order / order-line log into the raw contract.

    Parameters
    ----------
    paths : sequence of path-like
        CSV or Parquet files with the mapped columns (``.xlsx`` works too).
    out_dir : path-like
        Folder receiving ``orders.parquet`` (and ``order_items`` / ``products`` when a
        product column is mapped).
    mapping : mapping of str to str
        Keys from :data:`MAPPING_KEYS`: ``customer`` and ``timestamp`` are required,
        plus ``amount`` or both ``quantity`` and ``price``. Without ``order`` there is
        one order per (customer, timestamp), with id ``<customer>@<UTC time>``.
        ``amount`` is per row and summed per order; otherwise the order total is
        ``sum(quantity * price)``. ``status`` values are mapped onto the contract's
        statuses via :data:`STATUS_SYNONYMS`. ``timezone`` and ``date_format`` may
        also be given here.
    timezone : str, optional
        IANA zone of naive timestamps (argument, else mapping, else UTC).
    date_format : str, optional
        strptime format of text timestamps (argument, else mapping, else detected).

    Returns
    -------
    dict
        The load summary (see :func:`format_summary`).

    Raises
    ------
    LoadError
        As :func:`load_uci`, plus an incomplete mapping or mapped columns absent.
    """
    started = time.perf_counter()
    m = _validate_mapping(mapping)
    tz = timezone or m.get("timezone") or "UTC"
    fmt = date_format or m.get("date_format")
    session = _connect()
    con = session.con
    _check_timezone(con, tz)
    sources = _open(session, paths)
    date_formats = {
        src.label: _stage_transactions(session, src, i, m, tz, fmt) for i, src in enumerate(sources)
    }
    union = " union all ".join(f"select * from stage_{i}" for i in range(len(sources)))
    generated = "concat(coalesce(customer_id, 'unknown'), '@', strftime(timezone('UTC', ordered_at), '%Y-%m-%dT%H:%M:%SZ'))"
    order_id = "order_key" if "order" in m else generated
    con.execute(f"""
        create temp table rows_all as
        with keyed as (select *, {order_id} as order_id from ({union}))
        select *, source_index = min(source_index) over (partition by order_id) as is_owner
        from keyed
        """)
    con.execute("create temp table kept as select * from rows_all where is_owner")
    total = "amount" if "amount" in m else "quantity * price"
    priority = "case status when 'completed' then 1 when 'cancelled' then 2 when 'returned' then 3 else 4 end"
    con.execute(f"""
        create temp table orders_out as
        select
            order_id,
            min(customer_id) as customer_id,
            min(ordered_at) as ordered_at,
            round(sum({total}), 6) as order_total,
            arg_max(status, {priority}) filter (where status is not null) as status,
            count(distinct customer_id) as customer_count
        from kept
        group by order_id
        """)
    has_items = "product" in m
    quantity = "quantity" if "quantity" in m else "1"
    unit_price = "price" if "price" in m else f"amount / nullif({quantity}, 0)"
    writing = ["orders"] + (["order_items", "products"] if has_items else [])
    out, others = _prepare_out(out_dir, writing)
    written = {
        "orders": _write_table(
            con,
            "orders",
            "orders_out",
            out,
            {c: c for c in ("order_id", "customer_id", "ordered_at", "order_total", "status")},
        )
    }
    if has_items:
        con.execute(
            f"create temp table items_out as select order_id, product_id, {quantity} as quantity,"
            f" {unit_price} as unit_price from kept"
        )
        con.execute(
            "create temp table products_out as select distinct product_id from kept where product_id is not null order by 1"
        )
        written["order_items"] = _write_table(
            con, "order_items", "items_out", out, {c: c for c in TABLES["order_items"].column_names}
        )
        written["products"] = _write_table(con, "products", "products_out", out, {"product_id": "product_id"})

    def one(sql: str) -> int:
        return _count(con, sql)

    overlap_rows = one("select count(*) from rows_all where not is_owner")
    quarantine = {
        "orders_missing_customer_id": one("select count(*) from orders_out where customer_id is null"),
        "orders_negative_total": one("select count(*) from orders_out where order_total < 0"),
        "orders_invalid_status": one(
            "select count(*) from orders_out where status is not null and status not in ("
            + ", ".join(_lit(s) for s in ORDER_STATUSES)
            + ")"
        ),
        "orders_with_several_customers": one("select count(*) from orders_out where customer_count > 1"),
        "rows_missing_timestamp": one("select count(*) from kept where ordered_at is null"),
    }
    if has_items:
        quarantine["order_items_quantity_not_positive"] = one(
            "select count(*) from items_out where not (quantity > 0)"
        )
        quarantine["order_items_negative_price"] = one("select count(*) from items_out where unit_price < 0")
    summary: dict[str, Any] = {
        "command": "transactions",
        "out_dir": str(out),
        "timezone": tz,
        "mapping": {k: v for k, v in m.items() if k in _COLUMN_KEYS},
        "order_id": "mapped column" if "order" in m else "one order per (customer, timestamp)",
        "files": [{"file": s.label, "rows": s.rows, "dates": date_formats[s.label]} for s in sources],
        "rows_read": sum(s.rows for s in sources),
        "overlap": {
            "lines_deduplicated": overlap_rows,
            "invoices_deduplicated": one("select count(distinct order_id) from rows_all where not is_owner"),
            "rule": "each order taken from the first input that contains it",
        },
        "written": written,
        "order_statuses": dict(
            con.execute(
                "select coalesce(status, '(none)'), count(*) from orders_out group by all order by 1"
            ).fetchall()
        ),
        "skipped_lines": {"overlap_duplicate": overlap_rows},
        "kept_for_quarantine": quarantine,
        "other_tables_in_out_dir": others,
    }
    if has_items:
        summary["reconciled"] = summary["rows_read"] == written["order_items"] + overlap_rows
    summary["seconds"] = round(time.perf_counter() - started, 2)
    con.close()
    return summary


# --------------------------------------------------------------------------------------
# summary and command line
# --------------------------------------------------------------------------------------


def format_summary(summary: Mapping[str, Any]) -> str:
    """Render a load summary as the text the command line prints.

    Parameters
    ----------
    summary : mapping
        As returned by :func:`load_uci` or :func:`load_transactions`.

    Returns
    -------
    str
    """
    lines = [
        f"churnwarehouse.load {summary['command']} -> {summary['out_dir']}  (local time zone {summary['timezone']})"
    ]
    lines.append("rows read:")
    width = max(len(f["file"]) for f in summary["files"])
    for f in summary["files"]:
        schema = f"  [{f['schema']}]" if f.get("schema") else ""
        lines.append(f"  {f['file']:<{width}}  {f['rows']:>10,}{schema}  dates: {f['dates']}")
    lines.append(f"  {'total':<{width}}  {summary['rows_read']:>10,}")
    ov = summary["overlap"]
    unit = "invoices" if summary["command"] == "uci" else "orders"
    lines.append(
        f"overlap de-duplicated: {ov['lines_deduplicated']:,} lines ({ov['invoices_deduplicated']:,} {unit}); {ov['rule']}"
    )
    lines.append("written:")
    for table, n in summary["written"].items():
        extra = ""
        if table == "orders":
            extra = "  (" + ", ".join(f"{k} {v:,}" for k, v in summary["order_statuses"].items()) + ")"
        lines.append(f"  {table + '.parquet':<22} {n:>10,}{extra}")
    lines.append("skipped lines (reason):")
    for reason, n in summary["skipped_lines"].items():
        lines.append(f"  {reason:<22} {n:>10,}")
    if summary.get("skipped_invoices"):
        lines.append(
            "skipped invoices: " + ", ".join(f"{k} {v:,}" for k, v in summary["skipped_invoices"].items())
        )
    if summary.get("non_product_codes"):
        lines.append(
            "non-product codes (kept out of order_items/products, counted in order_total): "
            + ", ".join(f"{k} {v:,}" for k, v in summary["non_product_codes"].items())
        )
    lines.append("written as is, for the warehouse to quarantine:")
    for reason, n in summary["kept_for_quarantine"].items():
        lines.append(f"  {reason:<36} {n:>10,}")
    if "reconciled" in summary:
        lines.append(
            "reconciliation: rows read = order_items written + skipped lines: "
            + ("ok" if summary["reconciled"] else "MISMATCH")
        )
    if summary.get("other_tables_in_out_dir"):
        lines.append(
            "note: also in the output folder, not written by this load (the warehouse reads them too): "
            + ", ".join(summary["other_tables_in_out_dir"])
        )
    lines.append(f"took {summary['seconds']:.1f} s")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m churnwarehouse.load",
        description="Load real transaction logs into the warehouse's raw contract (Parquet, one file per table).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    uci = sub.add_parser("uci", help="UCI Online Retail / Online Retail II (.parquet, .csv, .xlsx)")
    uci.add_argument(
        "files", nargs="+", metavar="FILE", help="inputs; an invoice is taken from the first file holding it"
    )
    uci.add_argument("--out", required=True, metavar="DIR", help="raw directory to write")
    uci.add_argument(
        "--timezone", default="Europe/London", help="time zone of InvoiceDate (default Europe/London)"
    )
    uci.add_argument("--date-format", metavar="FMT", help="strptime format of text dates (default: detected)")
    uci.add_argument("--json", action="store_true", help="print the summary as JSON")

    tx = sub.add_parser(
        "transactions", help="any order / order-line log (.csv, .parquet) with a column mapping"
    )
    tx.add_argument("files", nargs="+", metavar="FILE")
    tx.add_argument("--out", required=True, metavar="DIR", help="raw directory to write")
    tx.add_argument(
        "--map", metavar="MAPPING_YML", help="YAML with keys " + ", ".join(MAPPING_KEYS) + " (flags override)"
    )
    for key in _COLUMN_KEYS:
        tx.add_argument(f"--{key}", metavar="COL", help=f"column holding the {key}")
    tx.add_argument("--timezone", help="time zone of naive timestamps (default UTC)")
    tx.add_argument(
        "--date-format", metavar="FMT", help="strptime format of text timestamps (default: detected)"
    )
    tx.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 on a load error)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "uci":
            summary = load_uci(args.files, args.out, timezone=args.timezone, date_format=args.date_format)
        else:
            mapping: dict[str, str | None] = dict(read_mapping(args.map)) if args.map else {}
            mapping.update({k: getattr(args, k) for k in _COLUMN_KEYS if getattr(args, k)})
            summary = load_transactions(
                args.files, args.out, mapping, timezone=args.timezone, date_format=args.date_format
            )
    except LoadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
