-- One row per customer per as_of_date with at least one completed order line on or before it:
-- product and category breadth, and the favourite category (most spend; ties by name).
-- Orders are joined to the snapshots first (a few million rows), and their lines follow them by
-- order_id, so the lines are joined once. Spend is summed per product, then per category, then
-- per snapshot: each level counts the distinct keys of the one below, with no distinct count and
-- no window.
with

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

orders as (

    select
        order_id,
        customer_id,
        ordered_at
    from {{ ref('stg_shop__orders') }}
    where status = 'completed'

),

products as (

    select
        product_id,
        category
    from {{ ref('stg_shop__products') }}

),

snapshots as (

    select
        customer_id,
        as_of_date
    from {{ ref('int_customer_snapshots') }}

),

orders_in_snapshots as (

    select
        orders.order_id,
        snapshots.customer_id,
        snapshots.as_of_date
    from orders
    inner join snapshots
        on
            orders.customer_id = snapshots.customer_id
            and {{ dbt.cast('orders.ordered_at', 'date') }} <= snapshots.as_of_date

),

product_spend as (

    select
        orders_in_snapshots.customer_id,
        orders_in_snapshots.as_of_date,
        products.category,
        order_items.product_id,
        sum(order_items.line_amount) as spend_amount
    from order_items
    inner join orders_in_snapshots
        on order_items.order_id = orders_in_snapshots.order_id
    left join products
        on order_items.product_id = products.product_id
    group by 1, 2, 3, 4

),

category_spend as (

    select
        customer_id,
        as_of_date,
        category,
        count(*) as product_count,
        sum(spend_amount) as spend_amount
    from product_spend
    group by 1, 2, 3

),

snapshot_spend as (

    select
        customer_id,
        as_of_date,
        {{ dbt.cast('sum(product_count)', dbt.type_bigint()) }} as distinct_product_count,
        count(category) as distinct_category_count,
        sum(spend_amount) as total_spend_amount,
        max(case when category is not null then spend_amount end) as favourite_spend_amount
    from category_spend
    group by 1, 2

),

-- the named category with the most spend, the first by name on a tie (or, should every named
-- category's spend be null, the first by name)
favourite_categories as (

    select
        category_spend.customer_id,
        category_spend.as_of_date,
        min(category_spend.category) as favourite_category
    from category_spend
    inner join snapshot_spend
        on
            category_spend.customer_id = snapshot_spend.customer_id
            and category_spend.as_of_date = snapshot_spend.as_of_date
    where
        category_spend.category is not null
        and (
            category_spend.spend_amount = snapshot_spend.favourite_spend_amount
            or snapshot_spend.favourite_spend_amount is null
        )
    group by 1, 2

),

final as (

    select
        snapshot_spend.customer_id,
        snapshot_spend.as_of_date,
        snapshot_spend.distinct_product_count,
        snapshot_spend.distinct_category_count,
        favourite_categories.favourite_category,
        snapshot_spend.favourite_spend_amount / nullif(snapshot_spend.total_spend_amount, 0)
            as favourite_category_spend_share
    from snapshot_spend
    left join favourite_categories
        on
            snapshot_spend.customer_id = favourite_categories.customer_id
            and snapshot_spend.as_of_date = favourite_categories.as_of_date

)

select * from final
