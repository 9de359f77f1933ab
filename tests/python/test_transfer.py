"""Relations to pandas through Arrow: the same frame as ``relation.df()``, values and dtypes."""

from __future__ import annotations

from unittest import mock

import duckdb
import pandas as pd
import pytest

from churnwarehouse.transfer import to_frame

#: Every converted type, with and without nulls, an all-null column of each, NaN beside null.
MIXED = """
select
    i::bigint as whole,
    case when i % 3 = 0 then null else i * 1000000007 end::bigint as whole_or_null,
    case when i % 4 = 0 then null else i end::integer as small_or_null,
    i::integer as small,
    null::bigint as no_whole,
    i / 7 as ratio,
    case when i % 5 = 0 then null when i % 5 = 1 then 'nan'::double else i / 3 end as ratio_or_null,
    (i / 2)::float as single,
    i % 2 = 0 as flag,
    case when i % 3 = 0 then null else i % 2 = 0 end as flag_or_null,
    null::boolean as no_flag,
    'C' || lpad(i::varchar, 6, '0') as customer_id,
    case when i % 4 = 0 then null when i % 4 = 1 then '' else 'café ' || i end as note_or_null,
    null::varchar as no_note,
    date '2026-01-01' + i::integer as day,
    case when i % 6 = 0 then null else date '2026-01-01' + i::integer end as day_or_null,
    null::date as no_day,
    timestamp '2026-01-01 08:30:00' + to_seconds(i * 3601) as moment,
    case when i % 2 = 0 then null else timestamp '2026-01-01' + to_days(i::integer) end as moment_or_null
from range(50) as rows(i)
"""


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def test_equals_df_with_every_converted_type_and_null_pattern(con):
    expected = con.sql(MIXED).df()
    relation = con.sql(MIXED)
    # the Arrow path must be the one taken: df() is not called at all
    with mock.patch.object(type(relation), "df", side_effect=AssertionError("df() called")):
        got = to_frame(relation)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert str(got["whole_or_null"].dtype) == "Int64" and str(got["flag_or_null"].dtype) == "boolean"


def test_columns_without_nulls_stay_plain_numpy_types(con):
    got = to_frame(con.sql("select i::bigint as n, i % 2 = 0 as b, date '2026-01-01' as d from range(3) t(i)"))
    assert [str(t) for t in got.dtypes] == ["int64", "bool", "datetime64[us]"]


def test_empty_result_is_typed_like_df(con):
    query = MIXED + " limit 0"
    pd.testing.assert_frame_equal(to_frame(con.sql(query)), con.sql(query).df(), check_exact=True)


def test_other_types_fall_back_to_df(con):
    query = "select sum(i) as total, 1.25::decimal(9, 2) as price, [i] as items from range(4) t(i) group by i"
    relation = con.sql(query)
    with mock.patch.object(type(relation), "df", autospec=True, side_effect=lambda self: "fallback") as df:
        assert to_frame(relation) == "fallback"
    df.assert_called_once()


def test_table_relations_and_filters(con):
    con.execute(f"create table features as {MIXED}")
    for relation in (con.table("features"), con.table("features").filter("flag").select("customer_id, day_or_null")):
        pd.testing.assert_frame_equal(to_frame(relation), relation.df(), check_exact=True)
