-- Clean support tickets: the rows of base_shop__support_tickets that passed every check (repaired rows included).
with

checked as (

    select * from {{ ref('base_shop__support_tickets') }}

),

staged as (

    select
        ticket_id,
        customer_id,
        opened_at,
        resolved_at,
        topic,
        satisfaction_score
    from checked
    where quarantine_action is null or quarantine_action = 'repaired'

)

select * from staged
