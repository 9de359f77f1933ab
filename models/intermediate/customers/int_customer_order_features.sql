-- One row per customer snapshot of int_customer_snapshots (customers with at least one
-- completed order on or before the as_of_date; only the training sample on training
-- snapshots): order features from orders before the snapshot's cutoff, plus the
-- completed orders inside the label window (used only by int_churn_labels). One pass over
-- orders x snapshots computes every snapshot at once; gaps come from distinct purchase days.
{% set windows = [30, 90, 180, 365] %}
{% set horizon = var('churn_horizon_days') | int %}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

snapshots as (

    select * from {{ ref('int_customer_snapshots') }}

),

-- the first day the shop's data covers: a window before it is unobserved, not empty
data_start as (

    select min({{ dbt.cast('ordered_at', 'date') }}) as first_data_date
    from orders

),

orders_in_snapshots as (

    select
        orders.customer_id,
        snapshots.as_of_date,
        orders.ordered_at,
        orders.order_total,
        orders.discount_amount,
        orders.coupon_code,
        orders.status = 'completed' as is_completed,
        orders.status = 'cancelled' as is_cancelled,
        orders.status = 'returned' as is_returned,
        orders.ordered_at < snapshots.cutoff_at as is_before_cutoff,
        {{ dbt.datediff(dbt.cast('orders.ordered_at', 'date'), 'snapshots.as_of_date', 'day') }} as days_ago
    from orders
    inner join snapshots
        on
            orders.customer_id = snapshots.customer_id
            and orders.ordered_at < coalesce(snapshots.label_window_end_at, snapshots.cutoff_at)

),

aggregated as (

    select
        customer_id,
        as_of_date,
        count(case when is_before_cutoff and is_completed then 1 end) as order_count,
        sum(case when is_before_cutoff and is_completed then order_total else 0 end) as total_spend_amount,
        min(case when is_before_cutoff and is_completed then ordered_at end) as first_order_at,
        max(case when is_before_cutoff and is_completed then ordered_at end) as last_order_at,
        {% for days in windows %}
            count(case when is_before_cutoff and is_completed and days_ago < {{ days }} then 1 end)
                as order_count_{{ days }}d,
            sum(case when is_before_cutoff and is_completed and days_ago < {{ days }} then order_total else 0 end)
                as spend_amount_{{ days }}d,
        {% endfor %}
        count(case when is_before_cutoff and is_completed and days_ago >= 90 and days_ago < 180 then 1 end)
            as order_count_prior_90d,
        sum(case when is_before_cutoff and is_completed and days_ago >= 90 and days_ago < 180 then order_total else 0 end)
            as spend_amount_prior_90d,
        -- the label window one year earlier: (as_of_date - 365 days, as_of_date - 365 days + horizon]
        count(
            case when is_before_cutoff and is_completed and days_ago >= {{ 365 - horizon }} and days_ago < 365 then 1 end
        ) as order_count_same_window_last_year,
        sum(
            case
                when is_before_cutoff and is_completed and days_ago >= {{ 365 - horizon }} and days_ago < 365 then order_total
                else 0
            end
        ) as spend_amount_same_window_last_year,
        count(case when is_before_cutoff then 1 end) as any_status_order_count,
        count(case when is_before_cutoff and is_cancelled then 1 end) as cancelled_order_count,
        count(case when is_before_cutoff and is_returned then 1 end) as returned_order_count,
        count(
            case when is_before_cutoff and is_completed and (discount_amount > 0 or coupon_code is not null) then 1 end
        ) as discounted_order_count,
        sum(case when is_before_cutoff and is_completed then coalesce(discount_amount, 0) else 0 end)
            as discount_amount_total,
        count(case when not is_before_cutoff and is_completed then 1 end) as label_window_order_count,
        min(case when not is_before_cutoff and is_completed then ordered_at end) as next_order_at
    from orders_in_snapshots
    group by 1, 2

),

-- one row per distinct purchase day with the gap since the one before: the first completed
-- order of each day is the one whose previous order fell on an earlier day (or that has none)
completed_order_days as (

    select
        customer_id,
        {{ dbt.cast('ordered_at', 'date') }} as purchase_date,
        lag({{ dbt.cast('ordered_at', 'date') }}) over (partition by customer_id order by ordered_at)
            as previous_order_date
    from orders
    where status = 'completed'

),

purchase_days_with_gaps as (

    select
        customer_id,
        purchase_date,
        {{ dbt.datediff('previous_order_date', 'purchase_date', 'day') }} as gap_days
    from completed_order_days
    where previous_order_date is null or previous_order_date < purchase_date

),

purchase_gaps as (

    select
        purchase_days_with_gaps.customer_id,
        snapshots.as_of_date,
        count(*) as purchase_day_count,
        avg(purchase_days_with_gaps.gap_days) as mean_purchase_gap_days,
        stddev_samp(purchase_days_with_gaps.gap_days) as stddev_purchase_gap_days
    from purchase_days_with_gaps
    inner join snapshots
        on
            purchase_days_with_gaps.customer_id = snapshots.customer_id
            and purchase_days_with_gaps.purchase_date <= snapshots.as_of_date
    group by 1, 2

),

final as (

    select
        aggregated.customer_id,
        aggregated.as_of_date,
        aggregated.order_count,
        aggregated.total_spend_amount,
        aggregated.first_order_at,
        aggregated.last_order_at,
        {{ dbt.datediff(dbt.cast('aggregated.last_order_at', 'date'), 'aggregated.as_of_date', 'day') }} as days_since_last_order,
        {{ dbt.datediff(dbt.cast('aggregated.first_order_at', 'date'), 'aggregated.as_of_date', 'day') }} as tenure_days,
        aggregated.total_spend_amount / aggregated.order_count as average_order_value,
        {% for days in windows %}
            aggregated.order_count_{{ days }}d,
            aggregated.spend_amount_{{ days }}d,
        {% endfor %}
        aggregated.order_count_prior_90d,
        aggregated.spend_amount_prior_90d,
        aggregated.order_count_90d - aggregated.order_count_prior_90d as order_count_trend_90d,
        aggregated.spend_amount_90d - aggregated.spend_amount_prior_90d as spend_amount_trend_90d,
        -- null when last year's window starts before the data does (unknown, not zero)
        case
            when {{ dbt.dateadd('day', -365, 'aggregated.as_of_date') }} >= data_start.first_data_date
                then aggregated.order_count_same_window_last_year
        end as order_count_same_window_last_year,
        case
            when {{ dbt.dateadd('day', -365, 'aggregated.as_of_date') }} >= data_start.first_data_date
                then aggregated.spend_amount_same_window_last_year
        end as spend_amount_same_window_last_year,
        aggregated.cancelled_order_count,
        aggregated.returned_order_count,
        aggregated.cancelled_order_count * 1.0 / aggregated.any_status_order_count as cancellation_rate,
        aggregated.returned_order_count * 1.0 / aggregated.any_status_order_count as return_rate,
        aggregated.discounted_order_count,
        aggregated.discount_amount_total,
        purchase_gaps.purchase_day_count,
        purchase_gaps.mean_purchase_gap_days,
        purchase_gaps.stddev_purchase_gap_days,
        aggregated.label_window_order_count,
        aggregated.next_order_at
    from aggregated
    cross join data_start
    left join purchase_gaps
        on
            aggregated.customer_id = purchase_gaps.customer_id
            and aggregated.as_of_date = purchase_gaps.as_of_date
    where aggregated.order_count > 0

)

select * from final
