-- One row per customer per as_of_date (scoring snapshot + labelled training snapshots), for
-- customers with at least one completed order on or before the as_of_date. Every feature uses
-- only data before the snapshot's cutoff (the end of as_of_date). Features of an optional
-- source that holds no data yet at a snapshot are null; with data, "no activity" is zero.
-- The feature dictionary is _ml__models.yml.
{% set counted = {
    'browsing': ['session_count_30d', 'session_count_prior_30d', 'session_count_90d', 'session_count_365d',
                 'active_day_count_90d', 'product_view_count_90d', 'cart_add_count_90d', 'search_count_90d'],
    'reviews': ['review_count', 'review_count_90d', 'negative_review_count'],
    'support': ['ticket_count', 'ticket_count_90d', 'unresolved_ticket_count'],
    'marketing': ['send_count', 'open_count', 'click_count', 'redemption_count',
                  'send_count_90d', 'open_count_90d', 'click_count_90d', 'redemption_count_90d'],
} %}

with

snapshots as (

    select
        as_of_date,
        is_scoring_snapshot,
        has_label
    from {{ ref('int_snapshot_dates') }}

),

coverage as (

    select * from {{ ref('int_source_coverage') }}

),

order_features as (

    select * from {{ ref('int_customer_order_features') }}

),

product_features as (

    select * from {{ ref('int_customer_product_features') }}

),

browsing_features as (

    select * from {{ ref('int_customer_browsing_features') }}

),

review_features as (

    select * from {{ ref('int_customer_review_features') }}

),

support_features as (

    select * from {{ ref('int_customer_support_features') }}

),

marketing_features as (

    select * from {{ ref('int_customer_marketing_features') }}

),

purchase_model as (

    select * from {{ ref('int_customer_purchase_model') }}

),

attributes as (

    select * from {{ ref('int_customer_attributes') }}

),

labels as (

    select * from {{ ref('int_churn_labels') }}

),

features_joined as (

    select
        order_features.customer_id,
        order_features.as_of_date,
        snapshots.is_scoring_snapshot,
        snapshots.has_label,
        labels.churned,
        labels.days_to_next_order,

        -- orders: recency, frequency, monetary value, rhythm
        order_features.days_since_last_order,
        order_features.order_count,
        order_features.total_spend_amount,
        order_features.tenure_days,
        order_features.average_order_value,
        order_features.purchase_day_count,
        order_features.mean_purchase_gap_days,
        order_features.stddev_purchase_gap_days,
        order_features.days_since_last_order * 1.0
        / nullif(order_features.mean_purchase_gap_days, 0) as purchase_gap_overdue_ratio,
        order_features.order_count_30d,
        order_features.order_count_90d,
        order_features.order_count_180d,
        order_features.order_count_365d,
        order_features.spend_amount_30d,
        order_features.spend_amount_90d,
        order_features.spend_amount_180d,
        order_features.spend_amount_365d,
        order_features.order_count_prior_90d,
        order_features.spend_amount_prior_90d,
        order_features.order_count_trend_90d,
        order_features.spend_amount_trend_90d,
        order_features.order_count_same_window_last_year,
        order_features.spend_amount_same_window_last_year,
        purchase_model.expected_purchases_next_horizon,
        purchase_model.probability_alive,
        purchase_model.probability_no_purchase_next_horizon,
        order_features.cancellation_rate,
        order_features.return_rate,
        case
            when coverage.has_discounts then order_features.discounted_order_count * 1.0 / order_features.order_count
        end as discounted_order_share,
        case
            when coverage.has_discounts
                then order_features.discount_amount_total
                    / nullif(order_features.total_spend_amount + order_features.discount_amount_total, 0)
        end as discount_amount_share,

        -- products and categories
        case when coverage.has_order_items then coalesce(product_features.distinct_product_count, 0) end
            as distinct_product_count,
        case when coverage.has_categories then coalesce(product_features.distinct_category_count, 0) end
            as distinct_category_count,
        product_features.favourite_category,
        product_features.favourite_category_spend_share,

        -- browsing
        case when coverage.has_events then coalesce(browsing_features.days_since_last_visit, 365) end
            as days_since_last_visit,
        {% for column in counted['browsing'] %}
            case when coverage.has_events then {{ dbt.cast('coalesce(' ~ 'browsing_features.' ~ column ~ ', 0)', dbt.type_bigint()) }} end
                as {{ column }},
        {% endfor %}
        case
            when coverage.has_events
                then {{ dbt.cast(
                    'coalesce(browsing_features.session_count_30d, 0) - coalesce(browsing_features.session_count_prior_30d, 0)',
                    dbt.type_bigint()
                ) }}
        end as session_count_trend_30d,
        browsing_features.abandoned_cart_session_count_90d * 1.0
        / nullif(browsing_features.cart_session_count_90d, 0) as cart_abandonment_rate_90d,

        -- reviews
        {% for column in counted['reviews'] %}
            case when coverage.has_reviews then {{ dbt.cast('coalesce(' ~ 'review_features.' ~ column ~ ', 0)', dbt.type_bigint()) }} end
                as {{ column }},
        {% endfor %}
        review_features.average_rating,
        review_features.average_rating_90d,
        review_features.average_sentiment_score,
        review_features.lowest_sentiment_score,

        -- support
        {% for column in counted['support'] %}
            case when coverage.has_support_tickets then {{ dbt.cast('coalesce(' ~ 'support_features.' ~ column ~ ', 0)', dbt.type_bigint()) }} end
                as {{ column }},
        {% endfor %}
        support_features.average_satisfaction_score,
        support_features.average_resolution_hours,
        support_features.days_since_last_ticket,

        -- marketing engagement
        {% for column in counted['marketing'] %}
            case when coverage.has_marketing_sends then {{ dbt.cast('coalesce(' ~ 'marketing_features.' ~ column ~ ', 0)', dbt.type_bigint()) }} end
                as {{ column }},
        {% endfor %}
        marketing_features.open_count_90d * 1.0 / nullif(marketing_features.send_count_90d, 0) as open_rate_90d,

        -- customer attributes
        attributes.country,
        attributes.preferred_channel,
        attributes.days_since_signup,
        attributes.is_marketing_opted_in,
        case when coverage.has_emails then attributes.has_email end as has_email
    from order_features
    inner join snapshots
        on order_features.as_of_date = snapshots.as_of_date
    inner join coverage
        on order_features.as_of_date = coverage.as_of_date
    left join product_features
        on order_features.customer_id = product_features.customer_id
            and order_features.as_of_date = product_features.as_of_date
    left join browsing_features
        on order_features.customer_id = browsing_features.customer_id
            and order_features.as_of_date = browsing_features.as_of_date
    left join review_features
        on order_features.customer_id = review_features.customer_id
            and order_features.as_of_date = review_features.as_of_date
    left join support_features
        on order_features.customer_id = support_features.customer_id
            and order_features.as_of_date = support_features.as_of_date
    left join marketing_features
        on order_features.customer_id = marketing_features.customer_id
            and order_features.as_of_date = marketing_features.as_of_date
    left join purchase_model
        on
            order_features.customer_id = purchase_model.customer_id
            and order_features.as_of_date = purchase_model.as_of_date
    left join attributes
        on order_features.customer_id = attributes.customer_id
            and order_features.as_of_date = attributes.as_of_date
    left join labels
        on order_features.customer_id = labels.customer_id
            and order_features.as_of_date = labels.as_of_date

)

select * from features_joined
