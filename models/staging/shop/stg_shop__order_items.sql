-- Clean order items: the rows of base_shop__order_items that passed every check (repaired rows included).
with

checked as (

    select * from {{ ref('base_shop__order_items') }}

),

staged as (

    select
        order_item_id,
        order_id,
        ordered_at,
        product_id,
        quantity,
        unit_price,
        line_amount
    from checked
    where quarantine_action is null or quarantine_action = 'repaired'

)

select * from staged
