"""The raw-data contract: which tables and columns the warehouse reads.

One file per table in the raw directory (dbt var ``raw_path``), named
``<table>.parquet`` (``<table>.csv`` accepted too). Only ``orders`` is required;
every other table, and every column not marked required, is optional: when it is
missing the warehouse fills it with typed nulls and whatever needs it is null or
zero downstream, never invented.

This module mirrors ``models/staging/shop/_shop__sources.yml`` (the dbt side of
the same contract); ``tests/python/test_contract.py`` fails if the two drift.

Types are DuckDB logical types. Timestamps may be naive (read as the dbt var
``source_timezone``, default UTC) or time-zone aware (converted to UTC).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    required: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    required: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _t(name: str, *cols: tuple, required: bool = False) -> Table:
    return Table(name, tuple(Column(*c) for c in cols), required)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        _t(
            "orders",
            ("order_id", "varchar", True),
            ("customer_id", "varchar", True),
            ("ordered_at", "timestamp", True),
            ("order_total", "double", True),
            ("status", "varchar"),
            ("discount_amount", "double"),
            ("coupon_code", "varchar"),
            ("channel", "varchar"),
            ("currency", "varchar"),
            required=True,
        ),
        _t(
            "customers",
            ("customer_id", "varchar", True),
            ("email", "varchar"),
            ("first_name", "varchar"),
            ("country", "varchar"),
            ("signed_up_at", "timestamp"),
            ("marketing_opt_in", "boolean"),
        ),
        _t(
            "order_items",
            ("order_id", "varchar", True),
            ("product_id", "varchar", True),
            ("quantity", "integer", True),
            ("unit_price", "double", True),
        ),
        _t(
            "products",
            ("product_id", "varchar", True),
            ("product_name", "varchar"),
            ("category", "varchar"),
            ("unit_cost", "double"),
        ),
        _t(
            "events",
            ("event_id", "varchar", True),
            ("customer_id", "varchar", True),
            ("session_id", "varchar"),
            ("event_type", "varchar", True),
            ("product_id", "varchar"),
            ("occurred_at", "timestamp", True),
        ),
        _t(
            "reviews",
            ("review_id", "varchar", True),
            ("customer_id", "varchar", True),
            ("product_id", "varchar"),
            ("rating", "integer", True),
            ("review_text", "varchar"),
            ("reviewed_at", "timestamp", True),
        ),
        _t(
            "support_tickets",
            ("ticket_id", "varchar", True),
            ("customer_id", "varchar", True),
            ("opened_at", "timestamp", True),
            ("resolved_at", "timestamp"),
            ("topic", "varchar"),
            ("satisfaction_score", "integer"),
        ),
        _t(
            "marketing_sends",
            ("send_id", "varchar", True),
            ("customer_id", "varchar", True),
            ("campaign_id", "varchar", True),
            ("offer_id", "varchar"),
            ("channel", "varchar"),
            ("sent_at", "timestamp", True),
            ("is_holdout", "boolean"),
            ("opened_at", "timestamp"),
            ("clicked_at", "timestamp"),
            ("redeemed_at", "timestamp"),
        ),
    )
}

ORDER_STATUSES = ("completed", "cancelled", "returned")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout", "search")

# Quarantine reasons the staging layer assigns. ``rejected`` rows are kept out of
# staging; ``repaired`` rows stay staged with the bad field nulled. Row counts
# reconcile as raw = staged + rejected.
QUARANTINE_REASONS = {
    "duplicate": "rejected",  # a second row with the same key (exact copy or not)
    "missing_<column>": "rejected",  # a required column is null / empty
    "invalid_timestamp": "rejected",  # a required timestamp does not parse
    "invalid_number": "rejected",  # a required amount or quantity does not parse
    "future_timestamp": "rejected",  # dated after the load time
    "negative_amount": "rejected",  # order_total / unit_price / discount below zero
    "invalid_quantity": "rejected",  # order item quantity <= 0
    "invalid_status": "rejected",  # order status outside ORDER_STATUSES
    "invalid_event_type": "rejected",  # event type outside EVENT_TYPES
    "invalid_rating": "rejected",  # rating outside 1..5
    "unknown_customer": "rejected",  # customer_id absent from a non-empty customers table
    "unknown_order": "rejected",  # order item whose order is not staged
    "malformed_email": "repaired",  # email kept out (nulled), customer kept
    "invalid_satisfaction_score": "repaired",  # score outside 1..5 nulled, ticket kept
}
