-- One row per customer per as_of_date with a support ticket opened on or before it. A ticket
-- counts as unresolved at a snapshot when it was not resolved before the cutoff; satisfaction
-- and resolution time only count for tickets resolved before the cutoff (known at the time).
with

tickets as (

    select * from {{ ref('stg_shop__support_tickets') }}

),

snapshots as (

    select
        customer_id,
        as_of_date,
        cutoff_at
    from {{ ref('int_customer_snapshots') }}

),

tickets_in_snapshots as (

    select
        tickets.customer_id,
        snapshots.as_of_date,
        tickets.satisfaction_score,
        coalesce(tickets.resolved_at < snapshots.cutoff_at, false) as is_resolved_by_cutoff,
        {{ dbt.datediff(dbt.cast('tickets.opened_at', 'date'), 'snapshots.as_of_date', 'day') }} as days_ago,
        {{ dbt.datediff('tickets.opened_at', 'tickets.resolved_at', 'hour') }} as resolution_hours
    from tickets
    inner join snapshots
        on
            tickets.customer_id = snapshots.customer_id
            and tickets.opened_at < snapshots.cutoff_at

),

final as (

    select
        customer_id,
        as_of_date,
        count(*) as ticket_count,
        count(case when days_ago < 90 then 1 end) as ticket_count_90d,
        count(case when not is_resolved_by_cutoff then 1 end) as unresolved_ticket_count,
        avg(case when is_resolved_by_cutoff then satisfaction_score end) as average_satisfaction_score,
        avg(case when is_resolved_by_cutoff then resolution_hours end) as average_resolution_hours,
        min(days_ago) as days_since_last_ticket
    from tickets_in_snapshots
    group by 1, 2

)

select * from final
