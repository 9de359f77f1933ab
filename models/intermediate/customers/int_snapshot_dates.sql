-- One row per as-of date: the scoring snapshot and the labelled training snapshots before it.
-- A snapshot sees data before cutoff_at (the end of its as_of_date); a training snapshot's label
-- window [cutoff_at, label_window_end_at) ends on or before the scoring date's cutoff.
{% set horizon = var('churn_horizon_days') | int %}
{% set interval_months = var('snapshot_interval_months') | int %}
{% set training_count = var('training_snapshot_count') | int %}
{# enough candidates to find training_count labelled snapshots after the unlabelled ones #}
{% set candidate_count = training_count + (horizon // (28 * interval_months)) + 2 %}

with

orders as (

    select ordered_at from {{ ref('stg_shop__orders') }}

),

order_range as (

    select
        min({{ dbt.cast('ordered_at', 'date') }}) as first_order_date,
        max({{ dbt.cast('ordered_at', 'date') }}) as last_order_date
    from orders

),

scoring_date as (

    select
        {% if var('as_of_date') -%}
            {{ dbt.cast(dbt.string_literal(var('as_of_date')), 'date') }}
        {%- else -%}
            last_order_date
        {%- endif %} as scoring_as_of_date,
        first_order_date
    from order_range

),

offsets as (

    {{ dbt.generate_series(candidate_count) }}

),

candidates as (

    select
        (offsets.generated_number - 1) * {{ interval_months }} as months_before_scoring,
        scoring_date.scoring_as_of_date,
        scoring_date.first_order_date,
        {{ dbt.cast(dbt.dateadd(
            'month',
            '-1 * (offsets.generated_number - 1) * ' ~ interval_months,
            'scoring_date.scoring_as_of_date'
        ), 'date') }} as as_of_date
    from offsets
    cross join scoring_date

),

windows as (

    select
        as_of_date,
        scoring_as_of_date,
        months_before_scoring,
        months_before_scoring = 0 as is_scoring_snapshot,
        {{ dbt.cast(dbt.dateadd('day', 1, 'as_of_date'), dbt.type_timestamp()) }} as cutoff_at,
        {{ dbt.cast(dbt.dateadd('day', horizon + 1, 'as_of_date'), dbt.type_timestamp()) }} as label_window_end_at,
        {{ dbt.dateadd('day', horizon, 'as_of_date') }} <= scoring_as_of_date as has_label,
        as_of_date >= first_order_date as has_history
    from candidates

),

training_ranked as (

    select
        *,
        row_number() over (partition by has_label order by as_of_date desc) as label_rank
    from windows

),

final as (

    select
        as_of_date,
        cutoff_at,
        case when has_label then label_window_end_at end as label_window_end_at,
        is_scoring_snapshot,
        has_label,
        months_before_scoring,
        scoring_as_of_date
    from training_ranked
    where
        has_history
        and (is_scoring_snapshot or (has_label and label_rank <= {{ training_count }}))

)

select * from final
