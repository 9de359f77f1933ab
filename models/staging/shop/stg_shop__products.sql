-- Clean products: the rows of base_shop__products that passed every check (repaired rows included).
with

checked as (

    select * from {{ ref('base_shop__products') }}

),

staged as (

    select
        product_id,
        product_name,
        category,
        unit_cost
    from checked
    where quarantine_action is null or quarantine_action = 'repaired'

)

select * from staged
