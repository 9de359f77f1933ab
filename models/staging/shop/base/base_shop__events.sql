-- One row per raw browsing event: typed, checked, with the reason it is quarantined (null when clean).
with

source as (

    select * from {{ source('shop', 'events') }}

),

{{ known_customer_ctes() }}

typed as (

    select
        {{ clean_string('source.event_id') }} as event_id,
        {{ clean_string('source.customer_id') }} as customer_id,
        {{ clean_string('source.session_id') }} as session_id,
        lower({{ clean_string('source.event_type') }}) as event_type,
        {{ clean_string('source.product_id') }} as product_id,
        {{ to_utc_timestamp('source.occurred_at') }} as occurred_at,
        {{ clean_string('source.occurred_at') }} is null as is_occurred_at_missing,
        {{ row_as_json('source') }} as raw_record
    from source

),

checked as (

    select
        typed.*,
        {{ first_failing_check([
            ('typed.event_id is null', 'missing_event_id'),
            ('typed.customer_id is null', 'missing_customer_id'),
            ('typed.event_type is null', 'missing_event_type'),
            ('typed.is_occurred_at_missing', 'missing_occurred_at'),
            ('typed.occurred_at is null', 'invalid_timestamp'),
            ('typed.event_type not in (\'page_view\', \'product_view\', \'add_to_cart\', \'checkout\', \'search\')', 'invalid_event_type'),
            ('typed.occurred_at > ' ~ load_timestamp(), 'future_timestamp'),
            unknown_customer_check(),
        ]) }} as validation_reason
    from typed
    {{ join_known_customers('typed') }}

),

ranked as (

    select
        *,
        {{ duplicate_rank(['event_id'], ['occurred_at', 'raw_record']) }} as key_rank
    from checked

),

final as (

    select
        event_id,
        customer_id,
        session_id,
        event_type,
        product_id,
        occurred_at,
        {{ quarantine_columns() }}
    from ranked

)

select * from final
