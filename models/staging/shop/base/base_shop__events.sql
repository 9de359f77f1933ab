-- One row per raw browsing event: typed, checked, with the reason it is quarantined (null when clean).
{{
    config(
        materialized='incremental',
        incremental_strategy='bounded_delete_insert',
        unique_key='event_id',
        on_schema_change='fail',
        pre_hook="{{ delete_rows_without_key('event_id') }}"
    )
}}

with

source as {{ inline_cte() }} (

    select * from {{ source('shop', 'events') }}
    {{- incremental_batch_filter(source('shop', 'events'), 'raw_rows', 'event_id', 'occurred_at') }}

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
        {{ is_missing('source.occurred_at', source('shop', 'events')) }} as is_occurred_at_missing,
        {{ raw_row('source') }} as raw_row
    from source

),

checked as {{ inline_cte() }} (

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

{{ rank_duplicates('checked', ['event_id'], ['occurred_at']) }},

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
