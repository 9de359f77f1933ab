{#
    Daily runs test what they staged; full refreshes test everything.

    The expensive key and relationship tests on the large incremental staging tables have the
    `where` config "test_window: <time column>" (dbt does not render project macros in generic
    test configs, so get_where_subquery below reads it at run time). Without var
    test_window_days (the default) such a test reads the whole table. With it, the test reads
    only the rows whose time column lies within that many days of the table's latest value: the
    rows a daily run staged. Keys stay unique across the whole table by construction
    (delete+insert on the key), and the weekly --full-refresh run, without the var, tests every row.
#}
{% macro test_window_condition(relation, column) -%}
    {%- set days = var('test_window_days', none) -%}
    {%- if days is not none and (days | string | trim) != '' -%}
        {{ column }} >= (
            select {{ dbt.dateadd('day', -1 * (days | int), 'max(' ~ column ~ ')') }}
            from {{ relation }}
        )
    {%- endif -%}
{%- endmacro %}


{# dbt's get_where_subquery, plus the "test_window: <column>" form described above. #}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and where.startswith('test_window:') -%}
        {%- set where = test_window_condition(relation, where[12:] | trim) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
