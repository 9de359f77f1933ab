-- One row per customer per as_of_date with a visit in the 365 days up to it: sessions, product
-- views, cart adds, cart abandonment, days since the last visit and the visit trend.
-- Events are reduced to session-days (a session's events on one day) before the snapshot join,
-- and only the 365 days before each snapshot are joined. Before that reduction, events older
-- than the latest snapshot's year are kept only for customers with an earlier snapshot (the
-- training sample), and the session-days are aggregated per snapshot directly: a day is active
-- when it has a session-day, so no per-day aggregation is needed.
with

events as (

    select * from {{ ref('stg_shop__events') }}

),

snapshots as (

    select
        customer_id,
        as_of_date
    from {{ ref('int_customer_snapshots') }}

),

last_snapshot as (

    select max(as_of_date) as last_as_of_date
    from snapshots

),

customers_with_earlier_snapshots as (

    select distinct snapshots.customer_id
    from snapshots
    cross join last_snapshot
    where snapshots.as_of_date < last_snapshot.last_as_of_date

),

-- a superset of the events some snapshot looks at; the snapshot join below applies each window
events_in_windows as (

    select
        events.customer_id,
        events.session_id,
        events.event_type,
        {{ dbt.cast('events.occurred_at', 'date') }} as visit_date
    from events
    cross join last_snapshot
    -- the day bounds as times, so no event's time is cast to a date to be filtered:
    -- its date <= D is its time < D + 1 day, its date > D - 365 days is its time >= D - 364 days
    where
        events.occurred_at < {{ dbt.dateadd('day', 1, 'last_snapshot.last_as_of_date') }}
        and (
            events.occurred_at >= {{ dbt.dateadd('day', -364, 'last_snapshot.last_as_of_date') }}
            or events.customer_id in (
                select customers_with_earlier_snapshots.customer_id from customers_with_earlier_snapshots
            )
        )

),

session_days as (

    select
        customer_id,
        coalesce(session_id, customer_id) as session_key,
        visit_date,
        count(case when event_type = 'product_view' then 1 end) as product_view_count,
        count(case when event_type = 'add_to_cart' then 1 end) as cart_add_count,
        count(case when event_type = 'search' then 1 end) as search_count,
        max(case when event_type = 'add_to_cart' then 1 else 0 end) as has_cart_add,
        max(case when event_type = 'checkout' then 1 else 0 end) as has_checkout
    from events_in_windows
    group by 1, 2, 3

),

session_days_in_snapshots as (

    select
        session_days.*,
        snapshots.as_of_date,
        {{ dbt.datediff('session_days.visit_date', 'snapshots.as_of_date', 'day') }} as days_ago
    from session_days
    inner join snapshots
        on
            session_days.customer_id = snapshots.customer_id
            and session_days.visit_date <= snapshots.as_of_date
            and session_days.visit_date > {{ dbt.dateadd('day', -365, 'snapshots.as_of_date') }}

),

final as (

    select
        customer_id,
        as_of_date,
        min(days_ago) as days_since_last_visit,
        sum(case when days_ago < 30 then 1 else 0 end) as session_count_30d,
        sum(case when days_ago >= 30 and days_ago < 60 then 1 else 0 end) as session_count_prior_30d,
        sum(case when days_ago < 90 then 1 else 0 end) as session_count_90d,
        sum(1) as session_count_365d,
        count(distinct case when days_ago < 90 then visit_date end) as active_day_count_90d,
        sum(case when days_ago < 90 then product_view_count else 0 end) as product_view_count_90d,
        sum(case when days_ago < 90 then cart_add_count else 0 end) as cart_add_count_90d,
        sum(case when days_ago < 90 then search_count else 0 end) as search_count_90d,
        sum(case when days_ago < 90 then has_cart_add else 0 end) as cart_session_count_90d,
        sum(case when days_ago < 90 and has_cart_add = 1 and has_checkout = 0 then 1 else 0 end)
            as abandoned_cart_session_count_90d
    from session_days_in_snapshots
    group by 1, 2

)

select * from final
