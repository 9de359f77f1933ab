{{ config(materialized='table') }}

-- One row per raw row that failed a check: rejected (kept out of staging) or repaired
-- (staged with the bad field nulled). raw rows = staged rows + rejected rows, per table.
with

quarantined as (

    select
        'orders' as table_name,
        order_id as record_key,
        quarantine_reason,
        quarantine_action,
        raw_record
    from {{ ref('base_shop__orders') }}
    where quarantine_reason is not null

    union all

    select
        'customers' as table_name,
        customer_id as record_key,
        quarantine_reason,
        quarantine_action,
        raw_record
    from {{ ref('base_shop__customers') }}
    where quarantine_reason is not null

    union all

    select
        'order_items' as table_name,
        order_item_id as record_key,
        quarantine_reason,
        quarantine_action,
        raw_record
    from {{ ref('base_shop__order_items') }}
    where quarantine_reason is not null

    union all

    select
        'products' as table_name,
        product_id as record_key,
        quarantine_reason,
        quarantine_action,
        raw_record
    from {{ ref('base_shop__products') }}
    where quarantine_reason is not null

    union all

    select
        'events' as table_name,
        event_id as record_key,
        quarantine_reason,
        quarantine_action,
        raw_record
    from {{ ref('base_shop__events') }}
    where quarantine_reason is not null

    union all

    select
        'reviews' as table_name,
        review_id as record_key,
        quarantine_reason,
        quarantine_action,
        raw_record
    from {{ ref('base_shop__reviews') }}
    where quarantine_reason is not null

    union all

    select
        'support_tickets' as table_name,
        ticket_id as record_key,
        quarantine_reason,
        quarantine_action,
        raw_record
    from {{ ref('base_shop__support_tickets') }}
    where quarantine_reason is not null

    union all

    select
        'marketing_sends' as table_name,
        send_id as record_key,
        quarantine_reason,
        quarantine_action,
        raw_record
    from {{ ref('base_shop__marketing_sends') }}
    where quarantine_reason is not null

),

final as (

    select
        table_name,
        record_key,
        quarantine_reason,
        quarantine_action,
        raw_record,
        {{ load_timestamp() }} as quarantined_at
    from quarantined

)

select * from final
