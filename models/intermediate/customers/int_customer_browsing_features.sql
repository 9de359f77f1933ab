-- One row per customer per as_of_date with a visit in the 365 days up to it: sessions, product
-- views, cart adds, cart abandonment, days since the last visit and the visit trend.
-- Events are reduced to session-days (a session's events on one day) before the snapshot join,
-- and only the 365 days before each snapshot are joined.
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

session_days as (

    select
        customer_id,
        coalesce(session_id, customer_id) as session_key,
        {{ dbt.cast('occurred_at', 'date') }} as visit_date,
        count(case when event_type = 'product_view' then 1 end) as product_view_count,
        count(case when event_type = 'add_to_cart' then 1 end) as cart_add_count,
        count(case when event_type = 'search' then 1 end) as search_count,
        max(case when event_type = 'add_to_cart' then 1 else 0 end) as has_cart_add,
        max(case when event_type = 'checkout' then 1 else 0 end) as has_checkout
    from events
    group by 1, 2, 3

),

daily_visits as (

    select
        customer_id,
        visit_date,
        count(*) as session_count,
        sum(product_view_count) as product_view_count,
        sum(cart_add_count) as cart_add_count,
        sum(search_count) as search_count,
        sum(has_cart_add) as cart_session_count,
        count(case when has_cart_add = 1 and has_checkout = 0 then 1 end) as abandoned_cart_session_count
    from session_days
    group by 1, 2

),

visits_in_snapshots as (

    select
        daily_visits.*,
        snapshots.as_of_date,
        {{ dbt.datediff('daily_visits.visit_date', 'snapshots.as_of_date', 'day') }} as days_ago
    from daily_visits
    inner join snapshots
        on
            daily_visits.customer_id = snapshots.customer_id
            and daily_visits.visit_date <= snapshots.as_of_date
            and daily_visits.visit_date > {{ dbt.dateadd('day', -365, 'snapshots.as_of_date') }}

),

final as (

    select
        customer_id,
        as_of_date,
        min(days_ago) as days_since_last_visit,
        sum(case when days_ago < 30 then session_count else 0 end) as session_count_30d,
        sum(case when days_ago >= 30 and days_ago < 60 then session_count else 0 end) as session_count_prior_30d,
        sum(case when days_ago < 90 then session_count else 0 end) as session_count_90d,
        sum(session_count) as session_count_365d,
        count(case when days_ago < 90 then 1 end) as active_day_count_90d,
        sum(case when days_ago < 90 then product_view_count else 0 end) as product_view_count_90d,
        sum(case when days_ago < 90 then cart_add_count else 0 end) as cart_add_count_90d,
        sum(case when days_ago < 90 then search_count else 0 end) as search_count_90d,
        sum(case when days_ago < 90 then cart_session_count else 0 end) as cart_session_count_90d,
        sum(case when days_ago < 90 then abandoned_cart_session_count else 0 end) as abandoned_cart_session_count_90d
    from visits_in_snapshots
    group by 1, 2

)

select * from final
