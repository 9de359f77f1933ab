"""Tests of the sample generator (``python -m churnwarehouse.generate``).

Every statistical check compares quantities recomputed here from the raw tables
against the simulation's truth or against the other group of customers; nothing
is read back from numbers the generator computed for the same check.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnwarehouse import generate as gen
from churnwarehouse.contract import EVENT_TYPES, ORDER_STATUSES, TABLES

N_CUSTOMERS = 5_000
SEED = 11
VALID_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
ARROW_TYPES = {
    "varchar": {pa.string(), pa.large_string()},
    "timestamp": {pa.timestamp("us")},
    "double": {pa.float64()},
    "integer": {pa.int32(), pa.int64()},
    "boolean": {pa.bool_()},
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    gen.generate(N_CUSTOMERS, SEED, root / "raw")
    return root


@pytest.fixture(scope="module")
def con(sample: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for name in TABLES:
        c.execute(f"create view {name} as "
                  f"select * from read_parquet('{sample}/raw/{name}.parquet')")
    for name in ("customers", "sends", "dirty_rows"):
        c.execute(f"create view truth_{name} as "
                  f"select * from read_parquet('{sample}/truth/{name}.parquet')")
    manifest = json.loads((sample / "truth" / "manifest.json").read_text())
    end = manifest["period"]["end_exclusive"]
    c.execute(f"create macro period_end() as timestamp '{end}'")
    # clean orders: not planted (new-id reasons, null id) and one copy of each duplicate
    c.execute("""
        create view clean_orders as
        select distinct * from orders
        where order_id is not null
          and order_id not in (
              select row_key from truth_dirty_rows
              where table_name = 'orders' and reason <> 'duplicate' and row_key is not null)
    """)
    return c


def _one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def test_schema_equals_contract(sample: Path, con: duckdb.DuckDBPyConnection) -> None:
    for name, table in TABLES.items():
        schema = pq.read_schema(sample / "raw" / f"{name}.parquet")
        assert schema.names == table.column_names, name
        for col in table.columns:
            assert schema.field(col.name).type in ARROW_TYPES[col.data_type], (name, col.name)
        described = con.execute(f"describe {name}").fetchall()
        assert [(r[0], r[1]) for r in described] == [
            (c.name, c.data_type.upper()) for c in table.columns], name


def test_row_volumes_and_ids(con: duckdb.DuckDBPyConnection) -> None:
    assert _one(con, "select count(*) from customers") >= N_CUSTOMERS
    assert _one(con, "select count(*) from products") == 500
    per_customer = _one(con, "select count(*) from clean_orders") / N_CUSTOMERS
    assert 5 < per_customer < 11
    lines = _one(con, "select count(*) * 1.0 / count(distinct order_id) from order_items")
    assert 2.0 < lines < 3.0
    assert _one(con, "select count(*) from customers where not regexp_matches(customer_id, "
                     "'^C[0-9]{7}$')") == 0
    assert _one(con, "select count(*) from clean_orders where not regexp_matches(order_id, "
                     "'^O[0-9]{8}$')") == 0
    assert _one(con, "select count(distinct category) from products") == 10
    assert _one(con, "select count(*) from order_items i join products p using (product_id) "
                     "where p.unit_cost >= i.unit_price / 1.0 and i.unit_price > 20") < \
        0.1 * _one(con, "select count(*) from order_items")


def test_keys_unique_among_clean_rows(con: duckdb.DuckDBPyConnection) -> None:
    keys = {
        "clean_orders": "order_id",
        "products": "product_id",
        "reviews": "review_id",
        "support_tickets": "ticket_id",
        "marketing_sends": "send_id",
        "order_items": "order_id, product_id",
        "(select distinct * from customers)": "customer_id",
        "(select distinct * from events)": "event_id",
    }
    for rel, key in keys.items():
        dupes = _one(con, f"select count(*) from (select {key} from {rel} "
                          f"group by all having count(*) > 1)")
        assert dupes == 0, rel
    # the only repeated keys in the raw files are the planted exact copies
    for table, key in (("orders", "order_id"), ("customers", "customer_id"),
                       ("events", "event_id")):
        repeated = _one(con, f"select count(*) - count(distinct {key}) from {table} "
                             f"where {key} is not null")
        exact = _one(con, f"select count(*) - (select count(*) from (select distinct * from "
                          f"{table} where {key} is not null)) from {table} where {key} is not null")
        planted = _one(con, f"select count(*) from truth_dirty_rows where table_name = '{table}' "
                            f"and reason = 'duplicate'")
        assert repeated == exact == planted > 0, table
    assert _one(con, "select count(*) from order_items where order_id not in "
                     "(select order_id from clean_orders)") == 0


def test_dirty_row_counts_match_the_files(con: duckdb.DuckDBPyConnection) -> None:
    planted = dict(con.execute("select table_name || '.' || reason, count(*) "
                               "from truth_dirty_rows group by 1").fetchall())
    found = {
        "orders.missing_order_id": "select count(*) from orders where order_id is null",
        "orders.missing_customer_id": "select count(*) from orders where customer_id is null",
        "orders.negative_amount": "select count(*) from orders where order_total < 0",
        "orders.future_timestamp": "select count(*) from orders where ordered_at >= period_end()",
        "orders.unknown_customer": "select count(*) from orders where customer_id is not null "
                                   "and customer_id not in (select customer_id from customers)",
        "customers.malformed_email": "select count(*) from (select distinct * from customers) "
                                     f"where not regexp_matches(email, '{VALID_EMAIL}')",
    }
    for key, sql in found.items():
        assert planted.get(key, 0) > 0, key
        assert _one(con, sql) == planted[key], key
    # every planted key is where the record says, and the malformed-email customers buy
    assert _one(con, """
        select count(*) from truth_dirty_rows d
        where d.table_name = 'orders' and d.reason not in ('duplicate', 'missing_order_id')
          and d.row_key not in (select order_id from orders where order_id is not null)""") == 0
    assert _one(con, """
        select count(*) from truth_dirty_rows d
        where d.reason = 'malformed_email'
          and d.row_key not in (select customer_id from clean_orders)""") == 0
    # planted rows carry exactly one defect each
    assert _one(con, "select count(*) from orders where order_id is null "
                     "and (customer_id is null or order_total < 0)") == 0
    # shares are near the documented defaults
    clean = _one(con, "select count(*) from clean_orders")
    for (table, reason), share in gen.DIRTY_SHARES.items():
        if table == "orders":
            assert abs(planted[f"{table}.{reason}"] / clean - share) < 0.6 * share + 0.002


def test_clean_rows_pass_contract_checks(con: duckdb.DuckDBPyConnection) -> None:
    statuses = ", ".join(f"'{s}'" for s in ORDER_STATUSES)
    types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    bad = {
        "orders": f"""select count(*) from clean_orders
            where customer_id is null or order_total < 0 or discount_amount < 0
               or ordered_at >= period_end() or status not in ({statuses})
               or customer_id not in (select customer_id from customers)""",
        "order_items": "select count(*) from order_items where quantity <= 0 or unit_price <= 0",
        "events": f"select count(*) from events where event_type not in ({types}) "
                  "or occurred_at >= period_end() or session_id is null",
        "reviews": "select count(*) from reviews where rating not between 1 and 5 "
                   "or reviewed_at >= period_end()",
        "tickets": "select count(*) from support_tickets where opened_at >= period_end() "
                   "or resolved_at < opened_at or resolved_at >= period_end() "
                   "or satisfaction_score not between 1 and 5",
        "sends": "select count(*) from marketing_sends where sent_at >= period_end() "
                 "or opened_at < sent_at or clicked_at < opened_at or redeemed_at < sent_at "
                 "or redeemed_at >= period_end()",
        "holdout": "select count(*) from marketing_sends where is_holdout and "
                   "(opened_at is not null or clicked_at is not null or redeemed_at is not null)",
        "signup": """select count(*) from customers c join
            (select customer_id, min(ordered_at) first_at from clean_orders group by 1) o
            using (customer_id) where c.signed_up_at > o.first_at""",
        "unknown": """select count(*) from (
            select customer_id from events union all select customer_id from reviews
            union all select customer_id from support_tickets
            union all select customer_id from marketing_sends)
            where customer_id not in (select customer_id from customers)""",
        "products": "select count(*) from (select product_id from order_items union all "
                    "select product_id from events where product_id is not null) "
                    "where product_id not in (select product_id from products)",
    }
    for name, sql in bad.items():
        assert _one(con, sql) == 0, name
    valid = _one(con, "select count(*) from customers "
                      f"where regexp_matches(email, '{VALID_EMAIL}')")
    assert valid > 0.97 * N_CUSTOMERS


def test_sessions_and_checkouts(con: duckdb.DuckDBPyConnection) -> None:
    # every clean order has a checkout event at ordered_at, in a session of its customer
    assert _one(con, """
        select count(*) from clean_orders o
        where not exists (select 1 from events e
                          where e.customer_id = o.customer_id and e.event_type = 'checkout'
                            and e.occurred_at = o.ordered_at)""") == 0
    # a session belongs to one customer and opens with a page view
    assert _one(con, "select count(*) from (select session_id from events group by 1 "
                     "having count(distinct customer_id) > 1)") == 0
    assert _one(con, """
        select count(*) from (
            select session_id, arg_min(event_type, (occurred_at, event_id)) as first_type
            from events group by 1) where first_type <> 'page_view'""") == 0
    # some carts are abandoned (add_to_cart without checkout in the session)
    abandoned = _one(con, """
        select avg((has_cart and not has_checkout)::int) / avg(has_cart::int) from (
            select session_id, bool_or(event_type = 'add_to_cart') as has_cart,
                   bool_or(event_type = 'checkout') as has_checkout
            from events group by 1)""")
    assert 0.1 < abandoned < 0.6


def test_order_total_reconciles_to_items(con: duckdb.DuckDBPyConnection) -> None:
    df = con.execute("""
        select o.order_id, o.order_total, o.discount_amount,
               sum(i.quantity * i.unit_price) as items_amount, count(i.order_id) as n_items
        from clean_orders o left join order_items i using (order_id)
        group by all""").df()
    assert (df["n_items"] >= 1).all()
    gap = (df["order_total"] - (df["items_amount"] - df["discount_amount"])).abs()
    assert gap.max() < 0.006
    assert (df["discount_amount"] > 0).mean() > 0.05
    assert _one(con, "select count(*) from clean_orders where coupon_code is not null "
                     "and discount_amount = 0") == 0


def test_same_seed_same_tables(tmp_path: Path) -> None:
    runs = [(tmp_path / "a", 5), (tmp_path / "b", 5), (tmp_path / "c", 6)]
    for folder, seed in runs:
        gen.generate(400, seed, folder / "raw", days=400, start="2025-01-01")
    for name in list(TABLES) + ["truth/customers", "truth/sends", "truth/dirty_rows"]:
        path = name if "/" in name else f"raw/{name}"
        a = pd.read_parquet(tmp_path / "a" / f"{path}.parquet")
        b = pd.read_parquet(tmp_path / "b" / f"{path}.parquet")
        pd.testing.assert_frame_equal(a, b)
    a = pd.read_parquet(tmp_path / "a" / "raw" / "orders.parquet")
    c = pd.read_parquet(tmp_path / "c" / "raw" / "orders.parquet")
    assert len(a) != len(c) or not a.equals(c)


def test_dirty_rate_zero_plants_nothing(tmp_path: Path) -> None:
    m = gen.generate(300, 3, tmp_path / "raw", dirty_rate=0.0)
    assert m["truth_rows"]["dirty_rows"] == 0
    assert pq.read_table(tmp_path / "truth" / "dirty_rows.parquet").num_rows == 0
    orders = pd.read_parquet(tmp_path / "raw" / "orders.parquet")
    assert orders["order_id"].notna().all() and orders["order_id"].is_unique
    customers = pd.read_parquet(tmp_path / "raw" / "customers.parquet")
    assert customers["email"].str.match(VALID_EMAIL).all()


def test_holdout_difference_matches_true_uplift(con: duckdb.DuckDBPyConnection) -> None:
    sends = con.execute("""
        with s as (select * from marketing_sends where sent_at + interval 30 day <= period_end())
        select s.send_id, s.customer_id, s.is_holdout,
               exists (select 1 from clean_orders o
                       where o.customer_id = s.customer_id and o.status = 'completed'
                         and o.ordered_at > s.sent_at
                         and o.ordered_at <= s.sent_at + interval 30 day) as purchased,
               t.true_uplift_30d, t.purchased_30d as truth_purchased
        from s join truth_sends t using (send_id)""").df()
    assert (sends["purchased"] == sends["truth_purchased"]).all()
    assert 0.1 < sends["is_holdout"].mean() < 0.2
    treated = sends.loc[~sends["is_holdout"], "purchased"].astype(float)
    holdout = sends.loc[sends["is_holdout"], "purchased"].astype(float)
    diff = treated.mean() - holdout.mean()
    # sends of one customer are correlated: inflate the naive standard error
    se = 1.5 * np.sqrt(treated.var() / len(treated) + holdout.var() / len(holdout))
    true_mean = sends["true_uplift_30d"].mean()
    assert diff > 2 * se
    assert abs(diff - true_mean) < 3 * se
    assert 0.01 < true_mean < 0.1
    # heterogeneity is real in the data: top vs bottom third of the true uplift
    sends["third"] = pd.qcut(sends["true_uplift_30d"].rank(method="first"), 3, labels=False)
    effect = sends.groupby(["third", "is_holdout"])["purchased"].mean().unstack()
    lift = effect[False] - effect[True]
    assert lift[2] > lift[0] + 0.03


def test_churners_visit_less_before_churn(con: duckdb.DuckDBPyConnection) -> None:
    df = con.execute("""
        with t as (select *, ntile(5) over (order by base_order_rate_weekly) as rate_band
                   from truth_customers),
        churners as (
            select customer_id, churned_at as ref, rate_band from t
            where churned_at >= (select min(sent_at) from marketing_sends) + interval 120 day),
        stayers as (select customer_id, acquired_at, rate_band from t where churned_at is null),
        pairs as (
            select c.customer_id as churner_id, s.customer_id as stayer_id, c.ref, c.rate_band,
                   row_number() over (partition by c.customer_id
                                      order by hash(c.customer_id || s.customer_id)) as rn
            from churners c join stayers s
              on s.rate_band = c.rate_band and s.acquired_at < c.ref - interval 120 day),
        sessions as (select customer_id, session_id, min(occurred_at) as started_at
                     from (select distinct * from events) group by all)
        select p.rate_band,
               (select count(*) from sessions e where e.customer_id = p.churner_id
                  and e.started_at >= p.ref - interval 60 day and e.started_at < p.ref) as churner,
               (select count(*) from sessions e where e.customer_id = p.stayer_id
                  and e.started_at >= p.ref - interval 60 day and e.started_at < p.ref) as stayer
        from pairs p where p.rn = 1""").df()
    assert len(df) > 300
    assert df["churner"].mean() < 0.75 * df["stayer"].mean()
    by_band = df.groupby("rate_band")[["churner", "stayer"]].mean()
    top = by_band.loc[by_band.index >= 3]
    assert (top["churner"] < top["stayer"]).all()


def test_experiences_worsen_before_churn(con: duckdb.DuckDBPyConnection) -> None:
    ratings = con.execute("""
        select coalesce(r.reviewed_at >= t.churned_at - interval 90 day, false) as pre_churn,
               avg(r.rating) from reviews r join truth_customers t using (customer_id)
        group by 1""").fetchall()
    rating = dict(ratings)
    assert rating[True] < rating[False] - 0.2
    unresolved = dict(con.execute("""
        select coalesce(k.opened_at >= t.churned_at - interval 90 day, false) as pre_churn,
               avg((k.resolved_at is null)::int)
        from support_tickets k join truth_customers t using (customer_id)
        where k.opened_at < period_end() - interval 60 day group by 1""").fetchall())
    assert unresolved[True] > 2 * unresolved[False]


def test_churn_base_rate_is_realistic(con: duckdb.DuckDBPyConnection) -> None:
    rate = _one(con, """
        with o as (select customer_id, ordered_at from clean_orders where status = 'completed'),
        as_of as (select period_end() - interval 120 day as d),
        active as (select distinct o.customer_id from o, as_of
                   where o.ordered_at >= as_of.d - interval 90 day and o.ordered_at < as_of.d)
        select 1 - avg((exists (select 1 from o, as_of where o.customer_id = a.customer_id
                        and o.ordered_at >= as_of.d
                        and o.ordered_at < as_of.d + interval 90 day))::int)
        from active a""")
    assert 0.3 < rate < 0.6
    statuses = dict(con.execute("select status, avg(1) * count(*) / (select count(*) from "
                                "clean_orders) from clean_orders group by 1").fetchall())
    assert 0.015 < statuses["cancelled"] < 0.05 and 0.02 < statuses["returned"] < 0.06
    one_and_done = _one(con, "select avg((n = 1)::int) from (select customer_id, count(*) n "
                             "from clean_orders group by 1)")
    assert 0.15 < one_and_done < 0.6
    peak = _one(con, """select avg(case when month(ordered_at) in (11, 12) then n end)
                        / avg(case when month(ordered_at) in (2, 3, 4, 5) then n end)
                        from (select date_trunc('day', ordered_at) as ordered_at, count(*) n
                              from clean_orders group by 1)""")
    assert peak > 1.2


def test_review_text_tone_follows_rating(con: duckdb.DuckDBPyConnection) -> None:
    reviews = con.execute("select rating, review_text from reviews "
                          "where review_text is not null").df()
    positive = re.compile(r"\b(love|great|excellent|fantastic|perfect|brilliant|superb|happy|"
                          r"pleased|recommend|impressed|lovely|wonderful|delighted|best)\b", re.I)
    negative = re.compile(r"\b(disappointed|broke|poor|cheap|waste|stopped|terrible|faulty|"
                          r"awful|flimsy|useless|avoid|damaged|let down|not|never|late|ages|"
                          r"crushed|unhelpful|refund)\b", re.I)
    score = (reviews["review_text"].str.count(positive)
             - reviews["review_text"].str.count(negative))
    rho = pd.Series(score).corr(reviews["rating"], method="spearman")
    assert 0.4 < rho < 0.95
    # not trivially separable: some 4-5 star texts read negative and some 1-2 star positive
    wrong = ((reviews["rating"] >= 4) & (score < 0)) | ((reviews["rating"] <= 2) & (score > 0))
    assert 0.01 < wrong.mean() < 0.3
    assert reviews["review_text"].nunique() > 0.3 * len(reviews)


def test_cli_writes_truth_beside_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "data" / "raw"
    assert gen.main(["--customers", "200", "--seed", "4", "--out", str(out)]) == 0
    truth = tmp_path / "data" / "truth"
    manifest = json.loads((truth / "manifest.json").read_text())
    for name in TABLES:
        assert pq.read_metadata(out / f"{name}.parquet").num_rows == manifest["rows"][name]
    assert manifest["seed"] == 4
    printed = capsys.readouterr().out
    assert "orders" in printed and "s" in printed.splitlines()[-1]
    with pytest.raises(SystemExit):
        gen.main(["--customers", "10", "--out", str(tmp_path / "x"), "--start", "2030-01-01"])
