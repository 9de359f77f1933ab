-- One row per raw order row: typed, checked, with the reason it is quarantined (null when clean).
{{
    config(
        materialized='incremental',
        incremental_strategy='bounded_delete_insert',
        unique_key='order_id',
        on_schema_change='fail',
        pre_hook="{{ delete_rows_without_key('order_id') }}"
    )
}}

with

source as {{ inline_cte() }} (

    select * from {{ source('shop', 'orders') }}
    {{- incremental_batch_filter(source('shop', 'orders'), 'raw_rows', 'order_id', 'ordered_at') }}

),

{{ known_customer_ctes() }}

typed as (

    select
        {{ clean_string('source.order_id') }} as order_id,
        {{ clean_string('source.customer_id') }} as customer_id,
        {{ to_utc_timestamp('source.ordered_at') }} as ordered_at,
        {{ is_missing('source.ordered_at', source('shop', 'orders')) }} as is_ordered_at_missing,
        {{ dbt.safe_cast('source.order_total', dbt.type_float()) }} as order_total,
        {{ is_missing('source.order_total', source('shop', 'orders')) }} as is_order_total_missing,
        coalesce(lower({{ clean_string('source.status') }}), 'completed') as status,
        {{ dbt.safe_cast('source.discount_amount', dbt.type_float()) }} as discount_amount,
        {{ clean_string('source.coupon_code') }} as coupon_code,
        lower({{ clean_string('source.channel') }}) as channel,
        upper({{ clean_string('source.currency') }}) as currency,
        {{ raw_row('source') }} as raw_row
    from source

),

checked as {{ inline_cte() }} (

    select
        typed.*,
        {{ first_failing_check([
            ('typed.order_id is null', 'missing_order_id'),
            ('typed.customer_id is null', 'missing_customer_id'),
            ('typed.is_ordered_at_missing', 'missing_ordered_at'),
            ('typed.ordered_at is null', 'invalid_timestamp'),
            ('typed.is_order_total_missing', 'missing_order_total'),
            ('typed.order_total is null', 'invalid_number'),
            ('typed.status not in (\'completed\', \'cancelled\', \'returned\')', 'invalid_status'),
            ('typed.order_total < 0 or typed.discount_amount < 0', 'negative_amount'),
            ('typed.ordered_at > ' ~ load_timestamp(), 'future_timestamp'),
            unknown_customer_check(),
        ]) }} as validation_reason
    from typed
    {{ join_known_customers('typed') }}

),

{{ rank_duplicates('checked', ['order_id'], ['ordered_at', 'order_total']) }},

final as (

    select
        order_id,
        customer_id,
        ordered_at,
        order_total,
        status,
        discount_amount,
        coupon_code,
        channel,
        currency,
        {{ quarantine_columns() }},
        -- the run that staged the row: order lines re-stage the lines of the orders it staged
        {{ run_timestamp() }} as staged_at
    from ranked

)

select * from final
