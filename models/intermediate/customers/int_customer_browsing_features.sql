-- One row per customer per as_of_date with a visit in the 365 days up to it: sessions, product
-- views, cart adds, cart abandonment, days since the last visit and the visit trend.
-- Reads the session-days (a session's events on one day) of int_customer_session_days, kept
-- up to date incrementally, and joins only the 365 days before each snapshot. Before the join,
-- session-days older than the latest snapshot's year are kept only for customers with an
-- earlier snapshot (the training sample), and the session-days are aggregated per snapshot
-- directly: a day is active when it has a session-day, so no per-day aggregation is needed.
with

session_days_all as (

    select * from {{ ref('int_customer_session_days') }}

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

-- a superset of the session-days some snapshot looks at; the snapshot join below applies each window
session_days as (

    select
        session_days_all.customer_id,
        session_days_all.visit_date,
        session_days_all.product_view_count,
        session_days_all.cart_add_count,
        session_days_all.search_count,
        session_days_all.has_cart_add,
        session_days_all.has_checkout
    from session_days_all
    cross join last_snapshot
    where
        session_days_all.visit_date <= last_snapshot.last_as_of_date
        and (
            session_days_all.visit_date > {{ dbt.dateadd('day', -365, 'last_snapshot.last_as_of_date') }}
            or session_days_all.customer_id in (
                select customers_with_earlier_snapshots.customer_id from customers_with_earlier_snapshots
            )
        )

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
