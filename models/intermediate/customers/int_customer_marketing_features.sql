-- One row per customer per as_of_date with a marketing message actually sent (not holdout) on or
-- before it: sends, opens, clicks and redemptions known before the cutoff, lifetime and 90 days.
with

sends as (

    select * from {{ ref('stg_shop__marketing_sends') }}
    where not is_holdout

),

snapshots as (

    select
        customer_id,
        as_of_date,
        cutoff_at
    from {{ ref('int_customer_snapshots') }}

),

sends_in_snapshots as (

    select
        sends.customer_id,
        snapshots.as_of_date,
        coalesce(sends.opened_at < snapshots.cutoff_at, false) as is_opened,
        coalesce(sends.clicked_at < snapshots.cutoff_at, false) as is_clicked,
        coalesce(sends.redeemed_at < snapshots.cutoff_at, false) as is_redeemed,
        {{ dbt.datediff(dbt.cast('sends.sent_at', 'date'), 'snapshots.as_of_date', 'day') }} as days_ago
    from sends
    inner join snapshots
        on
            sends.customer_id = snapshots.customer_id
            and sends.sent_at < snapshots.cutoff_at

),

final as (

    select
        customer_id,
        as_of_date,
        count(*) as send_count,
        count(case when is_opened then 1 end) as open_count,
        count(case when is_clicked then 1 end) as click_count,
        count(case when is_redeemed then 1 end) as redemption_count,
        count(case when days_ago < 90 then 1 end) as send_count_90d,
        count(case when days_ago < 90 and is_opened then 1 end) as open_count_90d,
        count(case when days_ago < 90 and is_clicked then 1 end) as click_count_90d,
        count(case when days_ago < 90 and is_redeemed then 1 end) as redemption_count_90d
    from sends_in_snapshots
    group by 1, 2

)

select * from final
