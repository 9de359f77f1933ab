-- One row per customer, session and day with a clean event (a session's events on one day):
-- the counts the browsing features add up over their windows. Incremental: a daily run
-- re-aggregates only the customer-days whose events were staged since the last run (see
-- macros/session_days.sql), so the browsing features read about 13M session-days instead of
-- scanning 55M events at a million customers.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_touched_session_days() }}"
    )
}}

{%- if is_incremental() %}
    {%- set watermark = session_days_watermark() %}
    {%- set earliest_touched_day -%}
        select min(visit_date) from ({{ session_days_touched(ref('base_shop__events'), watermark) }}) as touched
    {%- endset %}
{%- endif %}

with

{% if is_incremental() -%}
touched as (

    {{ session_days_touched(ref('base_shop__events'), watermark) }}

),
{%- endif %}

events as (

    select
        events.customer_id,
        events.session_id,
        events.event_type,
        {{ dbt.cast('events.occurred_at', 'date') }} as visit_date
    from {{ ref('stg_shop__events') }} as events
    {%- if is_incremental() %}
        -- the earliest touched day as a constant lets the scan skip older row groups
        where
            events.occurred_at >= {{ query_constant(earliest_touched_day, dbt.type_timestamp()) }}
            and exists (
                select 1
                from touched
                where
                    touched.customer_id = events.customer_id
                    and touched.visit_date = {{ dbt.cast('events.occurred_at', 'date') }}
            )
    {%- endif %}

),

session_days as (

    select
        customer_id,
        coalesce(session_id, customer_id) as session_key,
        visit_date,
        count(case when event_type = 'product_view' then 1 end) as product_view_count,
        count(case when event_type = 'add_to_cart' then 1 end) as cart_add_count,
        count(case when event_type = 'search' then 1 end) as search_count,
        max(case when event_type = 'add_to_cart' then 1 else 0 end) as has_cart_add,
        max(case when event_type = 'checkout' then 1 else 0 end) as has_checkout
    from events
    group by 1, 2, 3

),

final as (

    select
        session_days.*,
        (select max(staged_events.staged_at) from {{ ref('base_shop__events') }} as staged_events) as source_staged_at
    from session_days

)

select * from final
