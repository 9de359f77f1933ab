-- One row per raw product review: typed, checked, with the reason it is quarantined (null when clean).
{{
    config(
        materialized='incremental',
        incremental_strategy='bounded_delete_insert',
        unique_key='review_id',
        on_schema_change='fail',
        pre_hook="{{ delete_rows_without_key('review_id') }}"
    )
}}

with

source as {{ inline_cte() }} (

    select * from {{ source('shop', 'reviews') }}
    {{- incremental_batch_filter(source('shop', 'reviews'), 'raw_rows', 'review_id', 'reviewed_at') }}

),

{{ known_customer_ctes() }}

typed as (

    select
        {{ clean_string('source.review_id') }} as review_id,
        {{ clean_string('source.customer_id') }} as customer_id,
        {{ clean_string('source.product_id') }} as product_id,
        {{ dbt.safe_cast('source.rating', dbt.type_int()) }} as rating,
        {{ clean_string('source.review_text') }} as review_text,
        {{ to_utc_timestamp('source.reviewed_at') }} as reviewed_at,
        {{ is_missing('source.reviewed_at', source('shop', 'reviews')) }} as is_reviewed_at_missing,
        {{ raw_row('source') }} as raw_row
    from source

),

checked as {{ inline_cte() }} (

    select
        typed.*,
        {{ first_failing_check([
            ('typed.review_id is null', 'missing_review_id'),
            ('typed.customer_id is null', 'missing_customer_id'),
            ('typed.rating is null', 'missing_rating'),
            ('typed.rating not between 1 and 5', 'invalid_rating'),
            ('typed.is_reviewed_at_missing', 'missing_reviewed_at'),
            ('typed.reviewed_at is null', 'invalid_timestamp'),
            ('typed.reviewed_at > ' ~ load_timestamp(), 'future_timestamp'),
            unknown_customer_check(),
        ]) }} as validation_reason
    from typed
    {{ join_known_customers('typed') }}

),

{{ rank_duplicates('checked', ['review_id'], ['reviewed_at']) }},

final as (

    select
        review_id,
        customer_id,
        product_id,
        rating,
        review_text,
        reviewed_at,
        {{ quarantine_columns() }}
    from ranked

)

select * from final
