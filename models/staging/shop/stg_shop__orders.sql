-- Clean orders: the rows of base_shop__orders that passed every check (repaired rows included).
with

checked as (

    select * from {{ ref('base_shop__orders') }}

),

staged as (

    select
        order_id,
        customer_id,
        ordered_at,
        order_total,
        status,
        discount_amount,
        coupon_code,
        channel,
        currency
    from checked
    where quarantine_action is null or quarantine_action = 'repaired'

)

select * from staged
