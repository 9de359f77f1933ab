-- One row per raw marketing send (holdout rows included): typed, checked, with the reason it
-- is quarantined (null when clean). A missing is_holdout means the message was sent.
{{
    config(
        materialized='incremental',
        incremental_strategy='bounded_delete_insert',
        unique_key='send_id',
        on_schema_change='fail',
        pre_hook="{{ delete_rows_without_key('send_id') }}"
    )
}}

with

source as {{ inline_cte() }} (

    select * from {{ source('shop', 'marketing_sends') }}
    {{- incremental_batch_filter(source('shop', 'marketing_sends'), 'raw_rows', 'send_id', 'sent_at', ['opened_at', 'clicked_at', 'redeemed_at']) }}

),

{{ known_customer_ctes() }}

typed as (

    select
        {{ clean_string('source.send_id') }} as send_id,
        {{ clean_string('source.customer_id') }} as customer_id,
        {{ clean_string('source.campaign_id') }} as campaign_id,
        {{ clean_string('source.offer_id') }} as offer_id,
        lower({{ clean_string('source.channel') }}) as channel,
        {{ to_utc_timestamp('source.sent_at') }} as sent_at,
        {{ is_missing('source.sent_at', source('shop', 'marketing_sends')) }} as is_sent_at_missing,
        coalesce({{ dbt.safe_cast('source.is_holdout', dbt.type_boolean()) }}, false) as is_holdout,
        {{ to_utc_timestamp('source.opened_at') }} as opened_at,
        {{ to_utc_timestamp('source.clicked_at') }} as clicked_at,
        {{ to_utc_timestamp('source.redeemed_at') }} as redeemed_at,
        {{ raw_row('source') }} as raw_row
    from source

),

checked as {{ inline_cte() }} (

    select
        typed.*,
        {{ first_failing_check([
            ('typed.send_id is null', 'missing_send_id'),
            ('typed.customer_id is null', 'missing_customer_id'),
            ('typed.campaign_id is null', 'missing_campaign_id'),
            ('typed.is_sent_at_missing', 'missing_sent_at'),
            ('typed.sent_at is null', 'invalid_timestamp'),
            ('typed.sent_at > ' ~ load_timestamp(), 'future_timestamp'),
            unknown_customer_check(),
        ]) }} as validation_reason
    from typed
    {{ join_known_customers('typed') }}

),

{{ rank_duplicates('checked', ['send_id'], ['sent_at']) }},

final as (

    select
        send_id,
        customer_id,
        campaign_id,
        offer_id,
        channel,
        sent_at,
        is_holdout,
        opened_at,
        clicked_at,
        redeemed_at,
        {{ quarantine_columns() }}
    from ranked

)

select * from final
