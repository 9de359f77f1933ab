-- Clean customers: the rows of base_shop__customers that passed every check (repaired rows included).
with

checked as (

    select * from {{ ref('base_shop__customers') }}

),

staged as (

    select
        customer_id,
        email,
        first_name,
        country,
        signed_up_at,
        is_marketing_opted_in
    from checked
    where quarantine_action is null or quarantine_action = 'repaired'

)

select * from staged
