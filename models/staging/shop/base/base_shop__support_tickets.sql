-- One row per raw support ticket: typed, checked, with the reason it is quarantined (null when clean).
-- A satisfaction score outside 1..5 is repaired (nulled), the ticket kept.
{{
    config(
        materialized='incremental',
        incremental_strategy='bounded_delete_insert',
        unique_key='ticket_id',
        on_schema_change='fail',
        pre_hook="{{ delete_rows_without_key('ticket_id') }}"
    )
}}

with

source as {{ inline_cte() }} (

    select * from {{ source('shop', 'support_tickets') }}
    {{- incremental_batch_filter(source('shop', 'support_tickets'), 'raw_rows', 'ticket_id', 'opened_at', ['resolved_at']) }}

),

{{ known_customer_ctes() }}

typed as (

    select
        {{ clean_string('source.ticket_id') }} as ticket_id,
        {{ clean_string('source.customer_id') }} as customer_id,
        {{ to_utc_timestamp('source.opened_at') }} as opened_at,
        {{ is_missing('source.opened_at', source('shop', 'support_tickets')) }} as is_opened_at_missing,
        {{ to_utc_timestamp('source.resolved_at') }} as resolved_at,
        lower({{ clean_string('source.topic') }}) as topic,
        {{ dbt.safe_cast('source.satisfaction_score', dbt.type_int()) }} as satisfaction_score,
        {{ raw_row('source') }} as raw_row
    from source

),

checked as {{ inline_cte() }} (

    select
        typed.*,
        {{ first_failing_check([
            ('typed.ticket_id is null', 'missing_ticket_id'),
            ('typed.customer_id is null', 'missing_customer_id'),
            ('typed.is_opened_at_missing', 'missing_opened_at'),
            ('typed.opened_at is null', 'invalid_timestamp'),
            ('typed.opened_at > ' ~ load_timestamp(), 'future_timestamp'),
            unknown_customer_check(),
            ('typed.satisfaction_score not between 1 and 5', 'invalid_satisfaction_score'),
        ]) }} as validation_reason
    from typed
    {{ join_known_customers('typed') }}

),

{{ rank_duplicates('checked', ['ticket_id'], ['opened_at']) }},

final as (

    select
        ticket_id,
        customer_id,
        opened_at,
        resolved_at,
        topic,
        case when validation_reason = 'invalid_satisfaction_score' then null else satisfaction_score end as satisfaction_score,
        {{ quarantine_columns(repairable_reasons=['invalid_satisfaction_score']) }}
    from ranked

)

select * from final
