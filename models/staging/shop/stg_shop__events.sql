-- Clean events: the rows of base_shop__events that passed every check (repaired rows included).
with

checked as (

    select * from {{ ref('base_shop__events') }}

),

staged as (

    select
        event_id,
        customer_id,
        session_id,
        event_type,
        product_id,
        occurred_at
    from checked
    where quarantine_action is null or quarantine_action = 'repaired'

)

select * from staged
