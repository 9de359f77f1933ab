-- One row per customer per as_of_date whose features are computed: every customer with a
-- completed order before the scoring snapshot's cutoff, and, on the labelled training snapshots,
-- the customers of the training sample with a completed order before that snapshot's cutoff.
--
-- The training sample keeps whole customers (all their snapshots) chosen by a hash of the
-- customer id, just enough hash buckets (of 10,000) that the labelled rows stay within
-- var('max_training_rows'); below the cap every customer is kept. Training reads at most that
-- many rows anyway, so computing features for the rest would be work thrown away: at 1M
-- customers and 24 monthly snapshots this model cuts the feature joins from ~24M customer
-- snapshots to ~1.1M. The sample depends only on data before each snapshot's cutoff.
{% set bucket_count = 10000 %}
{% set max_training_rows = var('max_training_rows') | int %}

with

orders as (

    select
        customer_id,
        ordered_at
    from {{ ref('stg_shop__orders') }}
    where status = 'completed'

),

snapshots as (

    select * from {{ ref('int_snapshot_dates') }}

),

first_orders as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        {{ customer_sample_bucket('customer_id', bucket_count) }} as sample_bucket
    from orders
    group by 1

),

labelled_rows as (

    select count(*) as labelled_row_count
    from first_orders
    inner join snapshots
        on
            first_orders.first_order_at < snapshots.cutoff_at
            and snapshots.has_label

),

sample_size as (

    select
        labelled_row_count,
        case
            when labelled_row_count <= {{ max_training_rows }} then {{ bucket_count }}
            else greatest(1, floor({{ bucket_count }} * {{ max_training_rows }} * 1.0 / labelled_row_count))
        end as sampled_bucket_count
    from labelled_rows

),

final as (

    select
        first_orders.customer_id,
        snapshots.as_of_date,
        snapshots.cutoff_at,
        snapshots.label_window_end_at,
        snapshots.is_scoring_snapshot,
        snapshots.has_label,
        first_orders.sample_bucket < sample_size.sampled_bucket_count as is_in_training_sample
    from first_orders
    cross join sample_size
    inner join snapshots
        on first_orders.first_order_at < snapshots.cutoff_at
    where
        snapshots.is_scoring_snapshot
        or first_orders.sample_bucket < sample_size.sampled_bucket_count

)

select * from final
