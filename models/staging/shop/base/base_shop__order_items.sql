-- One row per raw order line: typed, checked, with the reason it is quarantined (null when clean).
-- The contract has no line id: a line repeating another line of the same order exactly
-- (product, quantity, unit price) is a duplicate.
with

source as (

    select * from {{ source('shop', 'order_items') }}

),

staged_orders as (

    select order_id from {{ ref('base_shop__orders') }}
    where quarantine_action is null

),

typed as (

    select
        {{ clean_string('source.order_id') }} as order_id,
        {{ clean_string('source.product_id') }} as product_id,
        {{ dbt.safe_cast('source.quantity', dbt.type_int()) }} as quantity,
        {{ dbt.safe_cast('source.unit_price', dbt.type_float()) }} as unit_price,
        {{ clean_string('source.quantity') }} is null as is_quantity_missing,
        {{ clean_string('source.unit_price') }} is null as is_unit_price_missing,
        {{ row_as_json('source') }} as raw_record
    from source

),

checked as (

    select
        typed.*,
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

ranked as (

    select
        *,
        {{ duplicate_rank(['order_id', 'product_id', 'quantity', 'unit_price'], ['raw_record']) }} as key_rank
    from checked

),

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
        {{ quarantine_columns() }}
    from ranked

)

select * from final
