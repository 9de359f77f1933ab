-- One row per customer per labelled (training) as_of_date, for customers with a completed order
-- on or before it: churned = no completed order in (as_of_date, as_of_date + churn_horizon_days].
-- The scoring snapshot has no label.
with

order_features as (

    select * from {{ ref('int_customer_order_features') }}

),

snapshots as (

    select
        as_of_date,
        cutoff_at,
        label_window_end_at
    from {{ ref('int_snapshot_dates') }}
    where has_label

),

final as (

    select
        order_features.customer_id,
        order_features.as_of_date,
        order_features.label_window_order_count = 0 as churned,
        order_features.label_window_order_count,
        {{ dbt.datediff('order_features.as_of_date', dbt.cast('order_features.next_order_at', 'date'), 'day') }}
            as days_to_next_order
    from order_features
    inner join snapshots
        on order_features.as_of_date = snapshots.as_of_date

)

select * from final
