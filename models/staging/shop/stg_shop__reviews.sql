-- Clean reviews: the rows of base_shop__reviews that passed every check (repaired rows included).
with

checked as (

    select * from {{ ref('base_shop__reviews') }}

),

staged as (

    select
        review_id,
        customer_id,
        product_id,
        rating,
        review_text,
        reviewed_at
    from checked
    where quarantine_action is null or quarantine_action = 'repaired'

)

select * from staged
