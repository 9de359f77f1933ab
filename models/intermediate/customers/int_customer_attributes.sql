-- One row per customer per as_of_date for customers with a completed order on or before it:
-- profile attributes (null without a customers table) and the channel most of their completed
-- orders came through up to the snapshot (ties by name).
with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

orders as (

    select
        customer_id,
        ordered_at,
        channel
    from {{ ref('stg_shop__orders') }}
    where status = 'completed'

),

snapshots as (

    select
        customer_id,
        as_of_date
    from {{ ref('int_customer_snapshots') }}

),

-- completed orders per channel up to each snapshot (orders are joined directly: a customer
-- rarely orders twice a day, so a per-day count first would not shrink the join)
channel_counts as (

    select
        orders.customer_id,
        snapshots.as_of_date,
        coalesce(orders.channel, '(unknown)') as channel,
        count(*) as order_count
    from orders
    inner join snapshots
        on
            orders.customer_id = snapshots.customer_id
            and {{ dbt.cast('orders.ordered_at', 'date') }} <= snapshots.as_of_date
    group by 1, 2, 3

),

channel_ranked as (

    select
        customer_id,
        as_of_date,
        channel,
        row_number() over (
            partition by customer_id, as_of_date
            order by case when channel = '(unknown)' then 1 else 0 end, order_count desc, channel asc
        ) as channel_rank
    from channel_counts

),

final as (

    select
        channel_ranked.customer_id,
        channel_ranked.as_of_date,
        customers.country,
        customers.is_marketing_opted_in,
        customers.email is not null as has_email,
        case
            when customers.signed_up_at < {{ dbt.cast(dbt.dateadd('day', 1, 'channel_ranked.as_of_date'), dbt.type_timestamp()) }}
                then {{ dbt.datediff(dbt.cast('customers.signed_up_at', 'date'), 'channel_ranked.as_of_date', 'day') }}
        end as days_since_signup,
        nullif(channel_ranked.channel, '(unknown)') as preferred_channel
    from channel_ranked
    left join customers
        on channel_ranked.customer_id = customers.customer_id
    where channel_ranked.channel_rank = 1

)

select * from final
