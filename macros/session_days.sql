{#- The incremental bookkeeping of int_customer_session_days. A run re-aggregates the
    (customer, day) pairs of every base_shop__events row staged since the rollup last ran
    (staged_at after the latest source_staged_at it holds): incremental staging re-stages all
    copies of a changed event id, so the pairs of both the old and the new version of an event
    are among them. Rows without an event id, customer or time never reach staging and are
    left out (rows without a key are re-staged on every run). -#}

{% macro session_days_watermark() -%}
    {%- set query -%}
        select coalesce(max(source_staged_at), {{ timestamp_floor() }}) from {{ this }}
    {%- endset -%}
    {{ query_constant(query, dbt.type_timestamp()) }}
{%- endmacro %}

{% macro session_days_touched(events_relation, watermark) -%}
    select distinct
        customer_id,
        {{ dbt.cast('occurred_at', 'date') }} as visit_date
    from {{ events_relation }}
    where
        staged_at > {{ watermark }}
        and event_id is not null
        and customer_id is not null
        and occurred_at is not null
{%- endmacro %}

{#- pre-hook: remove the session-days of the touched pairs (the model inserts them again, or
    nothing when their events are gone) -#}
{% macro delete_touched_session_days() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where exists (
            select 1
            from ({{ session_days_touched(ref('base_shop__events'), session_days_watermark()) }}) as touched
            where
                touched.customer_id = {{ this }}.customer_id
                and touched.visit_date = {{ this }}.visit_date
        )
    {%- endif -%}
{%- endmacro %}
