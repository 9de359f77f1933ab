-- Clean marketing sends: the rows of base_shop__marketing_sends that passed every check (repaired rows included).
with

checked as (

    select * from {{ ref('base_shop__marketing_sends') }}

),

staged as (

    select
        send_id,
        customer_id,
        campaign_id,
        offer_id,
        channel,
        sent_at,
        is_holdout,
        opened_at,
        clicked_at,
        redeemed_at
    from checked
    where quarantine_action is null or quarantine_action = 'repaired'

)

select * from staged
