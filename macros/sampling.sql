{#- A customer's hash bucket in [0, bucket_count): the deterministic unit of training samples.
    DuckDB's hash() is the one the churn model's own row cap uses (churnwarehouse.modeling), so
    on DuckDB the SQL sample and the Python safeguard pick the same customers. -#}
{% macro customer_sample_bucket(column, bucket_count) -%}
    {{ adapter.dispatch('customer_sample_bucket', 'churn_warehouse')(column, bucket_count) }}
{%- endmacro %}

{% macro default__customer_sample_bucket(column, bucket_count) -%}
    mod(abs(hash({{ column }})), {{ bucket_count }})
{%- endmacro %}

{% macro duckdb__customer_sample_bucket(column, bucket_count) -%}
    hash({{ column }}) % {{ bucket_count }}
{%- endmacro %}

{% macro spark__customer_sample_bucket(column, bucket_count) -%}
    pmod(hash({{ column }}), {{ bucket_count }})
{%- endmacro %}
