-- One row per customer per as_of_date with at least one completed order line on or before it:
-- product and category breadth, and the favourite category (most spend; ties by name).
-- Breadth counts each (customer, product) once from its first purchase date, and category spend
-- is summed per customer, category and day, so the snapshot join stays small.
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

lines_joined_to_orders as (

    select
        orders.customer_id,
        order_items.product_id,
        products.category,
        order_items.line_amount,
        {{ dbt.cast('orders.ordered_at', 'date') }} as purchase_date
    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    left join products
        on order_items.product_id = products.product_id

),

first_product_purchases as (

    select
        customer_id,
        product_id,
        category,
        min(purchase_date) as first_purchase_date
    from lines_joined_to_orders
    group by 1, 2, 3

),

daily_category_spend as (

    select
        customer_id,
        category,
        purchase_date,
        sum(line_amount) as spend_amount
    from lines_joined_to_orders
    group by 1, 2, 3

),

breadth as (

    select
        first_product_purchases.customer_id,
        snapshots.as_of_date,
        count(*) as distinct_product_count,
        count(distinct first_product_purchases.category) as distinct_category_count
    from first_product_purchases
    inner join snapshots
        on
            first_product_purchases.customer_id = snapshots.customer_id
            and first_product_purchases.first_purchase_date <= snapshots.as_of_date
    group by 1, 2

),

category_spend as (

    select
        daily_category_spend.customer_id,
        snapshots.as_of_date,
        daily_category_spend.category,
        sum(daily_category_spend.spend_amount) as spend_amount
    from daily_category_spend
    inner join snapshots
        on
            daily_category_spend.customer_id = snapshots.customer_id
            and daily_category_spend.purchase_date <= snapshots.as_of_date
    group by 1, 2, 3

),

category_ranked as (

    select
        customer_id,
        as_of_date,
        category,
        spend_amount,
        sum(spend_amount) over (partition by customer_id, as_of_date) as total_spend_amount,
        row_number() over (
            partition by customer_id, as_of_date
            order by case when category is null then 1 else 0 end, spend_amount desc, category asc
        ) as spend_rank
    from category_spend

),

final as (

    select
        breadth.customer_id,
        breadth.as_of_date,
        breadth.distinct_product_count,
        breadth.distinct_category_count,
        category_ranked.category as favourite_category,
        category_ranked.spend_amount / nullif(category_ranked.total_spend_amount, 0) as favourite_category_spend_share
    from breadth
    left join category_ranked
        on
            breadth.customer_id = category_ranked.customer_id
            and breadth.as_of_date = category_ranked.as_of_date
            and category_ranked.spend_rank = 1
            and category_ranked.category is not null

)

select * from final
