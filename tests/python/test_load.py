"""Tests for churnwarehouse.load: UCI and generic transaction logs -> raw contract."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from churnwarehouse import load
from churnwarehouse.contract import TABLES
from churnwarehouse.load import LoadError, is_non_product_code, load_transactions, load_uci, main

UCI_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "uci_online_retail"
UCI_II = UCI_DIR / "online_retail_ii_2009_2010.parquet"
UCI_I = UCI_DIR / "online_retail_2010_2011.parquet"

DUCKDB_TYPES = {
    "varchar": "VARCHAR",
    "double": "DOUBLE",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
}

# -- fixtures ------------------------------------------------------------------------


def retail_ii(rows: list[tuple]) -> pd.DataFrame:
    """Online Retail II frame: (invoice, code, description, qty, 'YYYY-MM-DD HH:MM:SS', price, customer, country)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "Invoice",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "Price",
            "Customer ID",
            "Country",
        ],
    )
    frame["Customer ID"] = frame["Customer ID"].astype("float64")  # as published: a double with NaN
    return frame


def retail_i(rows: list[tuple]) -> pd.DataFrame:
    """Online Retail frame: same tuple layout, timestamp dates, integer customer ids."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "InvoiceNo",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
            "Country",
        ],
    )
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame["CustomerID"] = frame["CustomerID"].astype("Int64")
    return frame


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


def read(out: Path, table: str) -> pd.DataFrame:
    """A written table as a frame of Python objects (None stays None)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    cursor = con.execute(f"select * from '{out / (table + '.parquet')}'")
    names = [d[0] for d in cursor.description]
    return pd.DataFrame(cursor.fetchall(), columns=names, dtype=object)


def orders_by_id(out: Path) -> dict[str, dict]:
    return {r["order_id"]: r for r in read(out, "orders").to_dict("records")}


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> object:
    """First value of a query (fetching everything, so the connection is free again)."""
    return con.execute(sql, params or []).fetchall()[0][0]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def same_instant(value: object, expected: datetime) -> bool:
    return pd.Timestamp(value).tz_convert("UTC") == pd.Timestamp(expected)


# -- non-product rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "POST",
        "DOT",
        "M",
        "BANK CHARGES",
        "C2",
        "CRUK",
        "D",
        "PADS",
        "AMAZONFEE",
        "S",
        "B",
        "gift_0001_20",
        "ADJUST2",
        "TEST001",
        " post ",
    ],
)
def test_non_product_codes(code: str) -> None:
    assert is_non_product_code(code)


@pytest.mark.parametrize("code", ["85123A", "22423", "84029g", "DCGSSBOY", "DCGS0076", "15056BL", None, ""])
def test_product_codes(code: str | None) -> None:
    assert not is_non_product_code(code)


def test_sql_rule_matches_python_rule() -> None:
    codes = [
        "POST",
        "DOT",
        "M",
        "BANK CHARGES",
        "C2",
        "GIFT_0001_20",
        "85123A",
        "DCGSSBOY",
        "TEST002",
        "XYZ",
        "22423",
        "ADJUST",
    ]
    con = duckdb.connect()
    sql = f"select code, {load._non_product_sql('code')} from unnest(?) as t(code)"
    got = dict(con.execute(sql, [codes]).fetchall())
    assert got == {c: is_non_product_code(c) for c in codes}


# -- uci -----------------------------------------------------------------------------


def test_both_schemas_recognised_and_typed(tmp_path: Path) -> None:
    ii = write_parquet(
        retail_ii(
            [("489434", "85048", "GLASS BALL", 12, "2010-01-05 10:00:00", 6.95, 13085.0, "United Kingdom")]
        ),
        tmp_path / "ii.parquet",
    )
    one = write_parquet(
        retail_i([("536365", "85123A", "HEART HOLDER", 6, "2011-01-05 08:26", 2.55, 17850, "France")]),
        tmp_path / "i.parquet",
    )
    out = tmp_path / "raw"
    summary = load_uci([ii, one], out)
    assert [f["schema"] for f in summary["files"]] == ["Online Retail II", "Online Retail"]
    assert [f["rows"] for f in summary["files"]] == [1, 1]
    orders = orders_by_id(out)
    assert set(orders) == {"489434", "536365"}
    assert orders["489434"]["customer_id"] == "13085"  # a double in the file, an integer id as text here
    assert orders["536365"]["customer_id"] == "17850"
    assert orders["489434"]["order_total"] == pytest.approx(83.4)
    assert orders["536365"]["currency"] == "GBP" and orders["536365"]["channel"] is None
    # every written table carries the contract's columns, in order, with its types
    con = duckdb.connect()
    for table in ("orders", "order_items", "products", "customers"):
        got = con.execute(f"describe select * from '{out / (table + '.parquet')}'").fetchall()
        assert [(r[0], r[1]) for r in got] == [
            (c.name, DUCKDB_TYPES[c.data_type]) for c in TABLES[table].columns
        ]
    assert not (out / "events.parquet").exists() and not (out / "reviews.parquet").exists()
    customers = read(out, "customers").set_index("customer_id")["country"].to_dict()
    assert customers == {"13085": "United Kingdom", "17850": "France"}


def test_overlap_deduplicated_per_invoice_and_within_file_duplicates_kept(tmp_path: Path) -> None:
    line_100 = ("100", "22423", "CAKESTAND", 2, "2010-12-01 09:00:00", 10.0, 1.0, "United Kingdom")
    first = write_parquet(
        retail_ii(
            [
                line_100,
                line_100,  # exact duplicate line inside one file: kept (staging quarantines it)
                ("200", "85123A", "HEART", 1, "2010-12-02 09:00:00", 3.0, 2.0, "United Kingdom"),
                ("200", "22423", "CAKESTAND", 1, "2010-12-02 09:00:00", 10.0, 2.0, "United Kingdom"),
            ]
        ),
        tmp_path / "a.parquet",
    )
    second = write_parquet(
        retail_i(
            [
                # invoice 200 again, with a different price so we can tell which copy won
                ("200", "85123A", "HEART", 1, "2010-12-02 09:00", 99.0, 2, "United Kingdom"),
                ("200", "22423", "CAKESTAND", 1, "2010-12-02 09:00", 99.0, 2, "United Kingdom"),
                ("300", "22423", "CAKESTAND", 1, "2010-12-20 09:00", 10.0, 3, "United Kingdom"),
            ]
        ),
        tmp_path / "b.parquet",
    )
    out = tmp_path / "raw"
    summary = load_uci([first, second], out)
    assert summary["overlap"] == {
        "lines_deduplicated": 2,
        "invoices_deduplicated": 1,
        "rule": "each invoice taken from the first input that contains it",
    }
    assert summary["written"]["orders"] == 3
    orders = orders_by_id(out)
    assert sorted(orders) == ["100", "200", "300"]
    assert orders["200"]["order_total"] == pytest.approx(13.0)  # from the first file
    assert orders["100"]["order_total"] == pytest.approx(40.0)  # both duplicate lines count
    items = read(out, "order_items")
    assert (items["order_id"] == "100").sum() == 2
    assert (items["order_id"] == "200").sum() == 2
    assert summary["reconciled"]

    # the other order of inputs takes invoice 200 from the other file
    load_uci([second, first], tmp_path / "raw2")
    assert orders_by_id(tmp_path / "raw2")["200"]["order_total"] == pytest.approx(198.0)


def test_cancellations_returned_or_cancelled_with_positive_totals(tmp_path: Path) -> None:
    rows = [
        ("500", "22423", "CAKESTAND", 3, "2011-03-01 10:00:00", 10.0, 1.0, "United Kingdom"),
        # customer 1 returns the cakestand bought earlier -> returned
        ("C501", "22423", "CAKESTAND", -2, "2011-03-05 10:00:00", 10.0, 1.0, "United Kingdom"),
        # customer 1 cancels a product never bought before -> cancelled
        ("C502", "85123A", "HEART", -1, "2011-03-06 10:00:00", 3.0, 1.0, "United Kingdom"),
        # customer 2 cancels the cakestand: bought by someone else only -> cancelled
        ("C503", "22423", "CAKESTAND", -1, "2011-03-07 10:00:00", 10.0, 2.0, "United Kingdom"),
        # customer 3 cancels before buying -> cancelled (the purchase is later)
        ("C504", "21000", "MUG", -1, "2011-03-01 09:00:00", 2.0, 3.0, "United Kingdom"),
        ("505", "21000", "MUG", 1, "2011-03-02 09:00:00", 2.0, 3.0, "United Kingdom"),
    ]
    out = tmp_path / "raw"
    summary = load_uci([write_parquet(retail_ii(rows), tmp_path / "x.parquet")], out)
    orders = orders_by_id(out)
    assert {k: v["status"] for k, v in orders.items()} == {
        "500": "completed",
        "C501": "returned",
        "C502": "cancelled",
        "C503": "cancelled",
        "C504": "cancelled",
        "505": "completed",
    }
    assert orders["C501"]["order_total"] == pytest.approx(20.0)
    assert orders["C502"]["order_total"] == pytest.approx(3.0)
    items = read(out, "order_items").set_index("order_id")
    assert items.loc["C501", "quantity"] == 2
    assert (read(out, "order_items")["quantity"] > 0).all()
    assert summary["order_statuses"] == {"cancelled": 3, "completed": 2, "returned": 1}


def test_non_product_lines_in_totals_not_in_items(tmp_path: Path) -> None:
    rows = [
        ("600", "22423", "CAKESTAND", 2, "2011-03-01 10:00:00", 10.0, 1.0, "United Kingdom"),
        ("600", "POST", "POSTAGE", 1, "2011-03-01 10:00:00", 18.0, 1.0, "United Kingdom"),
        ("600", "D", "Discount", -1, "2011-03-01 10:00:00", 5.0, 1.0, "United Kingdom"),
        ("601", "BANK CHARGES", "Bank Charges", 1, "2011-03-02 10:00:00", 15.0, 1.0, "United Kingdom"),
        ("602", "GIFT_0001_20", "Gift voucher", 1, "2011-03-03 10:00:00", 17.39, 1.0, "United Kingdom"),
    ]
    out = tmp_path / "raw"
    summary = load_uci([write_parquet(retail_ii(rows), tmp_path / "x.parquet")], out)
    orders = orders_by_id(out)
    assert orders["600"]["order_total"] == pytest.approx(20.0 + 18.0 - 5.0)
    assert orders["600"]["discount_amount"] == pytest.approx(5.0)
    assert orders["601"]["discount_amount"] is None
    assert orders["601"]["order_total"] == pytest.approx(15.0)
    assert read(out, "order_items")["product_id"].tolist() == ["22423"]
    assert read(out, "products")["product_id"].tolist() == ["22423"]
    assert summary["skipped_lines"]["non_product_line"] == 4
    assert summary["non_product_codes"] == {"BANK CHARGES": 1, "D": 1, "GIFT_0001_20": 1, "POST": 1}


def test_missing_customer_kept_adjustments_skipped_invalid_lines_counted(tmp_path: Path) -> None:
    rows = [
        ("700", "22423", "CAKESTAND", 1, "2011-03-01 10:00:00", 10.0, None, "United Kingdom"),
        ("701", "22423", "CAKESTAND", -4, "2011-03-01 11:00:00", 0.0, None, "United Kingdom"),  # 'damaged'
        ("702", "22423", "cake stand", 1, "2011-03-01 12:00:00", 10.0, 5.0, "Unspecified"),
        ("A703", "B", "Adjust bad debt", 1, "2011-03-01 13:00:00", -11062.06, None, "United Kingdom"),
    ]
    out = tmp_path / "raw"
    summary = load_uci([write_parquet(retail_ii(rows), tmp_path / "x.parquet")], out)
    orders = orders_by_id(out)
    assert set(orders) == {"700", "701", "702"}
    assert orders["700"]["customer_id"] is None
    assert summary["skipped_lines"]["adjust_bad_debt"] == 1
    assert summary["skipped_invoices"]["adjust_bad_debt"] == 1
    assert summary["kept_for_quarantine"]["orders_missing_customer_id"] == 2
    assert summary["kept_for_quarantine"]["order_items_quantity_not_positive"] == 1
    items = read(out, "order_items").set_index("order_id")
    assert items.loc["701", "quantity"] == -4  # written as is
    customers = read(out, "customers")
    assert customers["customer_id"].tolist() == ["5"]
    assert customers["country"].tolist() == [None]  # 'Unspecified' is not a country
    products = read(out, "products")
    assert products.set_index("product_id").loc["22423", "product_name"] == "CAKESTAND"  # most frequent


def test_timezone_summer_and_winter(tmp_path: Path) -> None:
    rows = [
        ("800", "22423", "CAKESTAND", 1, "2011-07-15 10:00:00", 10.0, 1.0, "United Kingdom"),
        ("801", "22423", "CAKESTAND", 1, "2011-01-15 10:00:00", 10.0, 1.0, "United Kingdom"),
    ]
    out = tmp_path / "raw"
    load_uci([write_parquet(retail_ii(rows), tmp_path / "x.parquet")], out)
    orders = orders_by_id(out)
    assert same_instant(orders["800"]["ordered_at"], utc(2011, 7, 15, 9, 0))  # BST
    assert same_instant(orders["801"]["ordered_at"], utc(2011, 1, 15, 10, 0))  # GMT
    load_uci([tmp_path / "x.parquet"], tmp_path / "raw_ny", timezone="America/New_York")
    assert same_instant(orders_by_id(tmp_path / "raw_ny")["800"]["ordered_at"], utc(2011, 7, 15, 14, 0))


def test_xlsx_every_sheet(tmp_path: Path) -> None:
    sheet_1 = retail_ii(
        [
            ("900", "22423", "CAKESTAND", 1, "2010-11-30 10:00:00", 10.0, 1.0, "United Kingdom"),
            ("901", "85123A", "HEART", 2, "2010-12-01 10:00:00", 3.0, 2.0, "United Kingdom"),
        ]
    )
    sheet_1["InvoiceDate"] = pd.to_datetime(sheet_1["InvoiceDate"])
    sheet_2 = retail_ii(
        [
            ("901", "85123A", "HEART", 2, "2010-12-01 10:00:00", 3.0, 2.0, "United Kingdom"),
            ("C902", "22423", "CAKESTAND", -1, "2011-01-03 10:00:00", 10.0, 1.0, "United Kingdom"),
        ]
    )
    sheet_2["InvoiceDate"] = pd.to_datetime(sheet_2["InvoiceDate"])
    path = tmp_path / "online_retail_II.xlsx"
    with pd.ExcelWriter(path) as writer:
        sheet_1.to_excel(writer, sheet_name="Year 2009-2010", index=False)
        sheet_2.to_excel(writer, sheet_name="Year 2010-2011", index=False)
    out = tmp_path / "raw"
    summary = load_uci([path], out)
    assert [f["file"] for f in summary["files"]] == [
        "online_retail_II.xlsx[Year 2009-2010]",
        "online_retail_II.xlsx[Year 2010-2011]",
    ]
    assert summary["overlap"]["invoices_deduplicated"] == 1
    orders = orders_by_id(out)
    assert set(orders) == {"900", "901", "C902"}  # invoice numbers stay text, not 900.0
    assert orders["C902"]["status"] == "returned"
    assert orders["901"]["customer_id"] == "2"


def test_csv_mirror_with_month_first_dates(tmp_path: Path) -> None:
    path = tmp_path / "Online Retail.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
        "536366,22633,HAND WARMER,6,6/13/2011 10:00,1.85,17850.0,United Kingdom\n"
        "536367,POST,POSTAGE,1,6/13/2011 10:05,18,,France\n",
        encoding="utf-8",
    )
    out = tmp_path / "raw"
    summary = load_uci([path], out)
    assert summary["files"][0]["dates"] == "%m/%d/%Y %H:%M"
    orders = orders_by_id(out)
    assert same_instant(orders["536366"]["ordered_at"], utc(2011, 6, 13, 9, 0))
    assert orders["536366"]["customer_id"] == "17850"
    assert orders["536367"]["customer_id"] is None


def test_latin1_csv_and_other_tables_in_out_dir_reported(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    path.write_bytes(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "1,GIFT_0001_20,Dotcomgiftshop Gift Voucher \u00a320.00,1,2010-12-01 10:00:00,17.39,12346.0,United Kingdom\n"
        "1,22423,CAF\u00c9 STAND,1,2010-12-01 10:00:00,10,12346.0,United Kingdom\n".encode("latin-1")
    )
    out = tmp_path / "raw"
    out.mkdir()
    (out / "events.parquet").write_bytes(b"")  # left by someone else: kept, reported
    summary = load_uci([path], out)
    assert read(out, "products")["product_name"].tolist() == ["CAF\u00c9 STAND"]
    assert orders_by_id(out)["1"]["order_total"] == pytest.approx(27.39)
    assert summary["other_tables_in_out_dir"] == ["events.parquet"]
    assert (out / "events.parquet").exists()


# -- errors --------------------------------------------------------------------------


def test_error_missing_columns_names_file_and_columns(tmp_path: Path) -> None:
    frame = retail_ii([("1", "22423", "X", 1, "2011-01-01 10:00:00", 1.0, 1.0, "UK")]).drop(columns=["Price"])
    path = write_parquet(frame, tmp_path / "broken.parquet")
    with pytest.raises(LoadError) as err:
        load_uci([path], tmp_path / "raw")
    message = str(err.value)
    assert "broken.parquet" in message
    assert "missing Price" in message
    assert "missing InvoiceNo, UnitPrice)" in message  # 'Customer ID' matches CustomerID
    assert "available columns: Invoice, StockCode" in message


def test_error_unparseable_dates_counts_and_shows_examples(tmp_path: Path) -> None:
    rows = [
        ("1", "22423", "X", 1, "2011-01-01 10:00:00", 1.0, 1.0, "UK"),
        ("2", "22423", "X", 1, "yesterday", 1.0, 1.0, "UK"),
        ("3", "22423", "X", 1, "31/31/2011", 1.0, 1.0, "UK"),
    ]
    path = write_parquet(retail_ii(rows), tmp_path / "dates.parquet")
    with pytest.raises(
        LoadError, match=r"dates\.parquet: 2 of 3 rows have unparseable dates in column 'InvoiceDate'"
    ) as err:
        load_uci([path], tmp_path / "raw")
    assert "'yesterday'" in str(err.value) and "'31/31/2011'" in str(err.value)


def test_error_ambiguous_dates_ask_for_a_format(tmp_path: Path) -> None:
    path = tmp_path / "ambiguous.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,22423,X,1,01/02/2011 10:00,1.0,1,UK\n",
        encoding="utf-8",
    )
    with pytest.raises(LoadError, match="ambiguous.*--date-format"):
        load_uci([path], tmp_path / "raw")
    summary = load_uci([path], tmp_path / "raw", date_format="%d/%m/%Y %H:%M")
    assert same_instant(orders_by_id(tmp_path / "raw")["1"]["ordered_at"], utc(2011, 2, 1, 10, 0))
    assert summary["files"][0]["dates"] == "%d/%m/%Y %H:%M"


def test_error_empty_input(tmp_path: Path) -> None:
    header_only = tmp_path / "header.csv"
    header_only.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    )
    with pytest.raises(LoadError, match=r"empty input: header\.csv has no data rows"):
        load_uci([header_only], tmp_path / "raw")
    zero = tmp_path / "zero.csv"
    zero.write_text("")
    with pytest.raises(LoadError, match="empty input: zero.csv"):
        load_uci([zero], tmp_path / "raw")
    assert not (tmp_path / "raw" / "orders.parquet").exists()


def test_cli_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["uci", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "raw")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: file not found:") and "nope.parquet" in err
    assert "Traceback" not in err and err.count("\n") == 1

    odd = tmp_path / "data.json"
    odd.write_text("{}")
    assert main(["uci", str(odd), "--out", str(tmp_path / "raw")]) == 2
    assert "unknown format for data.json" in capsys.readouterr().err

    ok = write_parquet(
        retail_ii([("1", "22423", "X", 1, "2011-01-01 10:00:00", 1.0, 1.0, "UK")]), tmp_path / "ok.parquet"
    )
    assert main(["uci", str(ok), "--out", str(tmp_path / "raw"), "--timezone", "Mars/Olympus"]) == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_cli_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = write_parquet(
        retail_ii([("1", "22423", "X", 1, "2011-01-01 10:00:00", 1.0, 1.0, "UK")]), tmp_path / "ok.parquet"
    )
    assert main(["uci", str(ok), "--out", str(tmp_path / "raw")]) == 0
    printed = capsys.readouterr().out
    assert "orders.parquet" in printed and "adjust_bad_debt" in printed and "non_product_line" in printed


# -- transactions ----------------------------------------------------------------------


def shop_log(tmp_path: Path) -> Path:
    path = tmp_path / "shop.csv"
    path.write_text(
        "order_no,user,created,sku,qty,unit_price,state\n"
        "A1,u1,2024-07-01 10:00:00,P1,2,5.00,paid\n"
        "A1,u1,2024-07-01 10:00:00,P2,1,2.50,paid\n"
        "A2,u2,2024-07-02 11:30:00,P1,1,5.00,Refunded\n"
        "A3,,2024-07-03 12:00:00,P3,1,1.00,weird\n",
        encoding="utf-8",
    )
    return path


def test_transactions_via_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "raw"
    code = main(
        [
            "transactions", str(shop_log(tmp_path)), "--out", str(out),
            "--customer", "user", "--order", "order_no", "--timestamp", "created",
            "--product", "sku", "--quantity", "qty", "--price", "unit_price", "--status", "state",
            "--timezone", "Europe/Berlin",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    orders = orders_by_id(out)
    assert orders["A1"]["order_total"] == pytest.approx(12.5)
    assert orders["A1"]["status"] == "completed"
    assert orders["A2"]["status"] == "returned"
    assert orders["A3"]["status"] == "weird" and orders["A3"]["customer_id"] is None
    assert same_instant(orders["A1"]["ordered_at"], utc(2024, 7, 1, 8, 0))  # CEST
    items = read(out, "order_items")
    assert len(items) == 4 and items["quantity"].tolist() == [2, 1, 1, 1]
    assert sorted(read(out, "products")["product_id"]) == ["P1", "P2", "P3"]
    assert not (out / "customers.parquet").exists()


def test_transactions_via_yaml_one_order_per_customer_and_timestamp(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "client": [10, 10, 10, 11],
            "when": ["01.07.2024 10:00", "01.07.2024 10:00", "02.07.2024 09:00", "01.07.2024 10:00"],
            "total": [5.0, 7.0, 3.0, 4.0],
        }
    )
    data = write_parquet(frame, tmp_path / "payments.parquet")
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(
        "customer: client\ntimestamp: when\namount: total\ntimezone: UTC\ndate_format: '%d.%m.%Y %H:%M'\n"
    )
    out = tmp_path / "raw"
    assert main(["transactions", str(data), "--out", str(out), "--map", str(mapping)]) == 0
    orders = read(out, "orders").sort_values(["customer_id", "ordered_at"]).reset_index(drop=True)
    assert orders["customer_id"].tolist() == ["10", "10", "11"]
    assert orders["order_total"].tolist() == pytest.approx([12.0, 3.0, 4.0])
    assert orders["order_id"][0] == "10@2024-07-01T10:00:00Z"
    assert not (out / "order_items.parquet").exists()


def test_transactions_flags_override_yaml(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yml"
    mapping.write_text(
        "customer: nobody\ntimestamp: created\norder: order_no\nquantity: qty\nprice: unit_price\n"
    )
    out = tmp_path / "raw"
    assert (
        main(
            [
                "transactions",
                str(shop_log(tmp_path)),
                "--out",
                str(out),
                "--map",
                str(mapping),
                "--customer",
                "user",
            ]
        )
        == 0
    )
    orders = orders_by_id(out)
    assert orders["A1"]["customer_id"] == "u1" and orders["A1"]["order_total"] == pytest.approx(12.5)
    assert orders["A1"]["status"] is None  # no status column mapped: unknown, not invented


def test_transactions_missing_mapped_column_lists_available(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as err:
        load_transactions(
            [shop_log(tmp_path)],
            tmp_path / "raw",
            {"customer": "customer_id", "timestamp": "created", "amount": "total"},
        )
    message = str(err.value)
    assert "shop.csv: mapped column(s) not found: customer_id (--customer), total (--amount)" in message
    assert "available columns: order_no, user, created, sku, qty, unit_price, state" in message


def test_transactions_incomplete_mapping(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"lacks amount \(or quantity and price\)"):
        load_transactions(
            [shop_log(tmp_path)], tmp_path / "raw", {"customer": "user", "timestamp": "created"}
        )


def test_transactions_unknown_yaml_key(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yml"
    mapping.write_text("customer: user\nwhen: created\n")
    with pytest.raises(LoadError, match="unknown keys when"):
        load.read_mapping(mapping)


# -- the real UCI files ----------------------------------------------------------------


@pytest.mark.real_data
@pytest.mark.skipif(not (UCI_II.exists() and UCI_I.exists()), reason="UCI data not present")
def test_real_uci_files_together(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    summary = load_uci([UCI_II, UCI_I], out)
    orders = out / "orders.parquet"
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    # the expected order count, computed from the sources independently of the loader
    expected_orders = scalar(
        con,
        f"""
        select count(distinct invoice) from (
            select Invoice as invoice from '{UCI_II}'
            union all
            select InvoiceNo from '{UCI_I}'
        ) where not starts_with(invoice, 'A')
        """,
    )
    assert expected_orders == 53622
    assert scalar(con, f"select count(*) from '{orders}'") == expected_orders
    assert scalar(con, f"select count(distinct order_id) from '{orders}'") == expected_orders
    assert summary["written"]["orders"] == expected_orders
    assert summary["overlap"]["lines_deduplicated"] == 22523
    assert summary["overlap"]["invoices_deduplicated"] == 1088
    assert summary["rows_read"] == 525461 + 541909
    assert summary["skipped_invoices"]["adjust_bad_debt"] == 6
    assert summary["reconciled"]
    # summer (BST) invoices stamped 10:00 local are 09:00 UTC, in both schemas
    for source, invoice_col, local_date in (
        (UCI_I, "InvoiceNo", "InvoiceDate"),
        (UCI_II, "Invoice", "cast(InvoiceDate as timestamp)"),
    ):
        invoice = scalar(
            con,
            f"""select {invoice_col} from '{source}'
            group by all having min({local_date}) = max({local_date})
                and month(min({local_date})) = 7 and strftime(min({local_date}), '%H:%M') = '10:00'
            order by 1 limit 1""",
        )
        ordered_at = scalar(con, f"select ordered_at from '{orders}' where order_id = ?", [invoice])
        assert ordered_at is not None, invoice
        assert (ordered_at.month, ordered_at.hour, ordered_at.minute) == (7, 9, 0), invoice
    # a winter invoice is unchanged (GMT = UTC): 536365 at 2010-12-01 08:26
    assert same_instant(
        scalar(con, f"select ordered_at from '{orders}' where order_id = '536365'"), utc(2010, 12, 1, 8, 26)
    )
    # non-products stay out; customer ids are integers as text
    assert (
        scalar(
            con, f"select count(*) from '{out / 'products.parquet'}' where product_id in ('POST', 'DOT', 'M')"
        )
        == 0
    )
    assert (
        scalar(
            con,
            f"select count(*) from '{out / 'customers.parquet'}' where not regexp_matches(customer_id, '^[0-9]+$')",
        )
        == 0
    )
