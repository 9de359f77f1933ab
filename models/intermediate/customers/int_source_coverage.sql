-- One row per as_of_date: which optional sources hold data before that snapshot's cutoff.
-- Features that need a source absent at a snapshot are null there (not zero): "no data" is
-- not "no activity". A source that starts mid-history is absent for the snapshots before it.
with

snapshots as (

    select
        as_of_date,
        cutoff_at
    from {{ ref('int_snapshot_dates') }}

),

order_line_starts as (

    -- one pass over order lines: when lines start, and when categorised lines start (a staged
    -- line carries its staged order's ordered_at, so the orders need not be joined)
    select
        min(items.ordered_at) as order_items_start_at,
        min(case when products.category is not null then items.ordered_at end) as categories_start_at
    from {{ ref('stg_shop__order_items') }} as items
    left join {{ ref('stg_shop__products') }} as products
        on items.product_id = products.product_id

),

source_starts as (

    select
        (
            select min(ordered_at) from {{ ref('stg_shop__orders') }}
            where discount_amount is not null or coupon_code is not null)
            as discounts_start_at,
        (select min(occurred_at) from {{ ref('stg_shop__events') }}) as events_start_at,
        (select min(reviewed_at) from {{ ref('stg_shop__reviews') }}) as reviews_start_at,
        (select min(opened_at) from {{ ref('stg_shop__support_tickets') }}) as support_tickets_start_at,
        (select min(sent_at) from {{ ref('stg_shop__marketing_sends') }}) as marketing_sends_start_at,
        (select count(*) from {{ ref('stg_shop__customers') }}) > 0 as has_customer_table,
        (select count(email) from {{ ref('stg_shop__customers') }}) > 0 as has_emails

),

final as (

    select
        snapshots.as_of_date,
        coalesce(order_line_starts.order_items_start_at < snapshots.cutoff_at, false) as has_order_items,
        coalesce(order_line_starts.categories_start_at < snapshots.cutoff_at, false) as has_categories,
        coalesce(source_starts.discounts_start_at < snapshots.cutoff_at, false) as has_discounts,
        coalesce(source_starts.events_start_at < snapshots.cutoff_at, false) as has_events,
        coalesce(source_starts.reviews_start_at < snapshots.cutoff_at, false) as has_reviews,
        coalesce(source_starts.support_tickets_start_at < snapshots.cutoff_at, false) as has_support_tickets,
        coalesce(source_starts.marketing_sends_start_at < snapshots.cutoff_at, false) as has_marketing_sends,
        source_starts.has_customer_table,
        source_starts.has_emails
    from snapshots
    cross join order_line_starts
    cross join source_starts

)

select * from final
