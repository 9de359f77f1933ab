-- One row per customer per as_of_date with a review written on or before it: ratings, negative
-- reviews and text sentiment of the reviews known at the snapshot.
with

reviews as (

    select * from {{ ref('stg_shop__reviews') }}

),

sentiment as (

    select
        review_id,
        sentiment_score
    from {{ ref('int_review_sentiment') }}

),

snapshots as (

    select
        customer_id,
        as_of_date,
        cutoff_at
    from {{ ref('int_customer_snapshots') }}

),

reviews_in_snapshots as (

    select
        reviews.customer_id,
        snapshots.as_of_date,
        reviews.rating,
        sentiment.sentiment_score,
        {{ dbt.datediff(dbt.cast('reviews.reviewed_at', 'date'), 'snapshots.as_of_date', 'day') }} as days_ago
    from reviews
    inner join snapshots
        on
            reviews.customer_id = snapshots.customer_id
            and reviews.reviewed_at < snapshots.cutoff_at
    left join sentiment
        on reviews.review_id = sentiment.review_id

),

final as (

    select
        customer_id,
        as_of_date,
        count(*) as review_count,
        count(case when days_ago < 90 then 1 end) as review_count_90d,
        avg(rating) as average_rating,
        count(case when rating <= 2 then 1 end) as negative_review_count,
        avg(case when days_ago < 90 then rating end) as average_rating_90d,
        avg(sentiment_score) as average_sentiment_score,
        min(sentiment_score) as lowest_sentiment_score
    from reviews_in_snapshots
    group by 1, 2

)

select * from final
