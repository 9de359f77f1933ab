-- One row per raw order line: typed, checked, with the reason it is quarantined (null when clean).
-- The contract has no line id: a line repeating another line of the same order exactly
-- (product, quantity, unit price) is a duplicate.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        on_schema_change='fail',
        pre_hook="{{ delete_rows_without_key('order_id') }}"
    )
}}

with

source as {{ inline_cte() }} (

    select * from {{ source('shop', 'order_items') }}
    {%- if is_incremental() %} as raw_rows
    -- a daily run re-stages the lines of the orders staged since this table last ran (new,
    -- changed or late orders) and the lines of orders that are not staged (they are quarantined
    -- again, or released if their order came in): together, the lines of every order but those
    -- staged before, found by one anti-join. Lines without an order id have a branch of their
    -- own. delete+insert on order_id replaces them whole
    where
        {{ clean_string('raw_rows.order_id') }} not in (
            select order_id from {{ ref('base_shop__orders') }}
            where
                quarantine_action is null
                and staged_at <= (
                    select coalesce(max(staged_at), {{ timestamp_floor() }})
                    from {{ this }}
                )
        )
    union all
    select * from {{ source('shop', 'order_items') }} as raw_rows
    where {{ raw_key_is_missing('raw_rows.order_id') }}
    {%- endif %}

),

staged_orders as (

    select
        order_id,
        ordered_at
    from {{ ref('base_shop__orders') }}
    where quarantine_action is null

),

typed as (

    select
        {{ clean_string('source.order_id') }} as order_id,
        {{ clean_string('source.product_id') }} as product_id,
        {{ dbt.safe_cast('source.quantity', dbt.type_int()) }} as quantity,
        {{ dbt.safe_cast('source.unit_price', dbt.type_float()) }} as unit_price,
        {{ is_missing('source.quantity', source('shop', 'order_items')) }} as is_quantity_missing,
        {{ is_missing('source.unit_price', source('shop', 'order_items')) }} as is_unit_price_missing,
        {{ raw_row('source') }} as raw_row
    from source

),

checked as {{ inline_cte() }} (

    select
        typed.*,
        staged_orders.ordered_at,
        {{ first_failing_check([
            ('typed.order_id is null', 'missing_order_id'),
            ('typed.product_id is null', 'missing_product_id'),
            ('typed.is_quantity_missing', 'missing_quantity'),
            ('typed.is_unit_price_missing', 'missing_unit_price'),
            ('typed.quantity is null or typed.unit_price is null', 'invalid_number'),
            ('typed.quantity <= 0', 'invalid_quantity'),
            ('typed.unit_price < 0', 'negative_amount'),
            ('staged_orders.order_id is null', 'unknown_order'),
        ]) }} as validation_reason
    from typed
    left join staged_orders
        on typed.order_id = staged_orders.order_id

),

{{ rank_duplicates('checked', ['order_id', 'product_id', 'quantity', 'unit_price'], []) }},

final as (

    select
        {{ dbt.hash(dbt.concat([
            'order_id', "'|'", 'product_id', "'|'",
            dbt.cast('quantity', dbt.type_string()), "'|'",
            dbt.cast('unit_price', dbt.type_string())
        ])) }} as order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        quantity * unit_price as line_amount,
        ordered_at,
        {{ quarantine_columns() }},
        {{ run_timestamp() }} as staged_at
    from ranked

)

select * from final
