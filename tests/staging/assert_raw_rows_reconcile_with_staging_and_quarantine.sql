-- Asserts that no raw row is silently dropped: for every raw table,
-- raw rows = staged rows + rejected quarantine rows. Returns the tables that do not reconcile.
-- After a daily (incremental) run a failure means rows left the raw files, or an order line
-- came alone for an order staged by an earlier run: run `dbt build --full-refresh`.
{% set tables = ['orders', 'customers', 'order_items', 'products', 'events', 'reviews', 'support_tickets', 'marketing_sends'] %}

with

counts as (

    {% for table_name in tables %}
        select
            '{{ table_name }}' as table_name,
            (select count(*) from {{ source('shop', table_name) }}) as raw_rows,
            (select count(*) from {{ ref('stg_shop__' ~ table_name) }}) as staged_rows,
            (
                select count(*) from {{ ref('stg_shop__quarantine') }}
                where table_name = '{{ table_name }}' and quarantine_action = 'rejected'
            ) as rejected_rows
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select *
from counts
where raw_rows != staged_rows + rejected_rows
