-- One row per build: how well the review-text sentiment agrees with star ratings on the
-- out-of-time hold-out (reviews written after the sentiment model's fit cutoff).
with

sentiment as (

    select * from {{ ref('int_review_sentiment') }}

),

reviews as (

    select
        review_id,
        rating
    from {{ ref('stg_shop__reviews') }}

),

scored as (

    select
        sentiment.is_fit_sample,
        sentiment.sentiment_score,
        sentiment.expected_rating,
        reviews.rating
    from sentiment
    inner join reviews
        on sentiment.review_id = reviews.review_id

),

final as (

    select
        count(case when is_fit_sample then 1 end) as fit_review_count,
        count(case when not is_fit_sample and sentiment_score is not null then 1 end) as holdout_review_count,
        corr(
            case when not is_fit_sample then expected_rating end,
            case when not is_fit_sample then rating end
        ) as holdout_rating_correlation,
        avg(case when not is_fit_sample then abs(expected_rating - rating) end) as holdout_mean_absolute_error,
        avg(
            case
                when not is_fit_sample and rating != 3 and sentiment_score is not null
                    then case when (sentiment_score > 0) = (rating > 3) then 1.0 else 0.0 end
            end
        ) as holdout_polarity_accuracy
    from scored

)

select * from final
