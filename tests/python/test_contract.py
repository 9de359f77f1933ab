"""The Python contract (used by the generator and loaders) and the dbt sources YAML agree."""

from __future__ import annotations

from pathlib import Path

import yaml

from churnwarehouse.contract import TABLES

SOURCES_YML = Path(__file__).resolve().parents[2] / "models/staging/shop/_shop__sources.yml"


def _dbt_tables() -> dict:
    sources = yaml.safe_load(SOURCES_YML.read_text())["sources"]
    (shop,) = [s for s in sources if s["name"] == "shop"]
    return {t["name"]: t for t in shop["tables"]}


def test_same_tables():
    assert set(_dbt_tables()) == set(TABLES)


def test_same_columns_types_and_required_flags():
    for name, dbt_table in _dbt_tables().items():
        table = TABLES[name]
        dbt_columns = [
            (c["name"], c["data_type"], bool(c.get("meta", {}).get("required", False)))
            for c in dbt_table["columns"]
        ]
        py_columns = [(c.name, c.data_type, c.required) for c in table.columns]
        assert dbt_columns == py_columns, name
        assert bool(dbt_table.get("meta", {}).get("required", False)) == table.required, name


def test_only_orders_is_required():
    assert [t.name for t in TABLES.values() if t.required] == ["orders"]
