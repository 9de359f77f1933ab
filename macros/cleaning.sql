{#- Cleaning helpers shared by every staging base model. Portable through dbt's
    cross-database macros; DuckDB-specific forms are dispatched. -#}

{% macro clean_string(column) -%}
    nullif(trim(cast({{ column }} as {{ dbt.type_string() }})), '')
{%- endmacro %}

{% macro to_utc_timestamp(column) -%}
    {%- set parsed = dbt.safe_cast(column, dbt.type_timestamp()) -%}
    {%- set source_timezone = var('source_timezone', 'UTC') -%}
    {%- if source_timezone | upper == 'UTC' -%}
        {{ parsed }}
    {%- else -%}
        {{ adapter.dispatch('convert_timezone_to_utc', 'churn_warehouse')(parsed, source_timezone) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__convert_timezone_to_utc(expression, source_timezone) -%}
    convert_timezone('{{ source_timezone }}', 'UTC', {{ expression }})
{%- endmacro %}

{% macro duckdb__convert_timezone_to_utc(expression, source_timezone) -%}
    timezone('UTC', timezone('{{ source_timezone }}', {{ expression }}))
{%- endmacro %}

{% macro spark__convert_timezone_to_utc(expression, source_timezone) -%}
    to_utc_timestamp({{ expression }}, '{{ source_timezone }}')
{%- endmacro %}

{#- The load time against which "future" timestamps are judged. -#}
{% macro load_timestamp() -%}
    {{ dbt.cast(dbt.current_timestamp(), dbt.type_timestamp()) }}
{%- endmacro %}

{#- The whole raw row as a JSON string, kept in quarantine for inspection. -#}
{% macro row_as_json(relation_alias) -%}
    {{ adapter.dispatch('row_as_json', 'churn_warehouse')(relation_alias) }}
{%- endmacro %}

{% macro default__row_as_json(relation_alias) -%}
    to_json(struct({{ relation_alias }}.*))
{%- endmacro %}

{% macro duckdb__row_as_json(relation_alias) -%}
    cast(to_json({{ relation_alias }}) as varchar)
{%- endmacro %}

{% macro snowflake__row_as_json(relation_alias) -%}
    to_json(object_construct({{ relation_alias }}.*))
{%- endmacro %}

{% macro is_valid_email(column) -%}
    {{ adapter.dispatch('is_valid_email', 'churn_warehouse')(column) }}
{%- endmacro %}

{% macro default__is_valid_email(column) -%}
    regexp_like({{ column }}, '^[^@[:space:]]+@[^@[:space:]]+[.][^@[:space:]]+$')
{%- endmacro %}

{% macro duckdb__is_valid_email(column) -%}
    regexp_full_match({{ column }}, '[^@\s]+@[^@\s]+\.[^@\s]+')
{%- endmacro %}

{% macro spark__is_valid_email(column) -%}
    {{ column }} rlike '^[^@\\s]+@[^@\\s]+[.][^@\\s]+$'
{%- endmacro %}

{#- A case expression naming the first failing check, or null when all pass.
    checks: list of (condition_sql, reason) pairs in priority order. -#}
{% macro first_failing_check(checks) -%}
    case
    {%- for condition, reason in checks %}
        when {{ condition }} then '{{ reason }}'
    {%- endfor %}
    end
{%- endmacro %}

{#- Rank rows sharing a key: valid rows first, then a deterministic tie-break, so the
    surviving copy is the same on every run. Rows ranked > 1 are duplicates. -#}
{% macro duplicate_rank(key_columns, order_columns) -%}
    row_number() over (
        partition by {{ key_columns | join(', ') }}
        order by (validation_reason is null) desc, {{ order_columns | join(', ') }}
    )
{%- endmacro %}

{#- Final quarantine columns for a checked, ranked relation. A row failing a rejecting
    check keeps that reason; otherwise a second copy of a key is a duplicate; otherwise a
    row failing only a repairable check is staged with the field nulled ("repaired"). -#}
{% macro quarantine_columns(repairable_reasons=[]) -%}
    {%- set is_repairable -%}
        {%- if repairable_reasons -%}
            validation_reason in ('{{ repairable_reasons | join("', '") }}')
        {%- else -%}
            false
        {%- endif -%}
    {%- endset -%}
    case
        when validation_reason is not null and not ({{ is_repairable }}) then validation_reason
        when key_rank > 1 then 'duplicate'
        else validation_reason
    end as quarantine_reason,
    case
        when validation_reason is not null and not ({{ is_repairable }}) then 'rejected'
        when key_rank > 1 then 'rejected'
        when validation_reason is not null then 'repaired'
    end as quarantine_action,
    case when validation_reason is not null or key_rank > 1 then raw_record end as raw_record
{%- endmacro %}

{#- Import CTEs for the unknown-customer check: the staged customer ids, and whether a
    customers table was provided at all (without one, every customer is known from orders). -#}
{% macro known_customer_ctes() -%}
known_customers as (

    select customer_id from {{ ref('base_shop__customers') }}
    where quarantine_action is null or quarantine_action = 'repaired'

),

customer_table_state as (

    select count(*) > 0 as has_customer_table from known_customers

),
{%- endmacro %}

{% macro unknown_customer_check() -%}
    {{ return(('customer_table_state.has_customer_table and known_customers.customer_id is null', 'unknown_customer')) }}
{%- endmacro %}

{% macro join_known_customers(relation_alias) -%}
    cross join customer_table_state
    left join known_customers
        on {{ relation_alias }}.customer_id = known_customers.customer_id
{%- endmacro %}

{#- dbt-duckdb implements dbt.safe_cast as a plain cast, which aborts the build on the
    first unparseable raw value; staging needs null instead, so the row reaches quarantine. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
