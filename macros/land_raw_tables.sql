{#-
    Land the raw files of the contract as views in the raw schema, shaped to the contract.

    Called from `on-run-start`. For each table of the `shop` source it looks in
    var('raw_path') for `<table>.parquet`, then `<table>.csv`, and creates
    `<raw_schema>.<table>` as a view that has every contract column:
    - a column the file lacks becomes a typed null (optional columns only);
    - a table with no file becomes an empty view (optional tables only);
    - string columns are cast to varchar (CSV is read all-varchar and typed in staging,
      so unparseable values reach quarantine instead of failing the load);
    - time-zone-aware timestamps are expressed in var('source_timezone'); staging then
      converts every timestamp from that zone to UTC.
    A missing required table or column stops the run with a message naming the file,
    the missing columns and the columns present.

    On adapters other than DuckDB the raw tables are expected to exist already
    (loaded by the shop's EL tool), so the default implementation does nothing.
-#}
{% macro land_raw_tables() %}
    {{ return(adapter.dispatch('land_raw_tables', 'churn_warehouse')()) }}
{% endmacro %}

{% macro default__land_raw_tables() %}
    {{ return('') }}
{% endmacro %}

{% macro duckdb__land_raw_tables() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set raw_path = var('raw_path') %}
    {% set raw_schema = var('raw_schema') %}
    {% set source_timezone = var('source_timezone') %}
    {% set statements = ['create schema if not exists ' ~ raw_schema] %}
    {% set summary = [] %}
    {% set shop_sources = graph.sources.values() | selectattr('source_name', 'equalto', 'shop') | list %}
    {% if shop_sources | length == 0 %}
        {{ exceptions.raise_compiler_error('land_raw_tables: no tables declared for source "shop"') }}
    {% endif %}

    {% for source_node in shop_sources | sort(attribute='name') %}
        {% set table_name = source_node.name %}
        {% set table_required = source_node.meta.get('required', false) %}
        {% set found = namespace(path=none, reader=none) %}
        {% for candidate in [
            (raw_path ~ '/' ~ table_name ~ '.parquet', 'read_parquet'),
            (raw_path ~ '/' ~ table_name ~ '.csv', 'read_csv')
        ] %}
            {% if found.path is none %}
                {% set hits = run_query("select count(*) from glob('" ~ candidate[0] ~ "')").columns[0].values()[0] %}
                {% if hits > 0 %}
                    {% set found.path = candidate[0] %}
                    {% set found.reader = candidate[1] %}
                {% endif %}
            {% endif %}
        {% endfor %}
        {% set found_path = found.path %}
        {% set reader = found.reader %}

        {% if found_path is none and table_required %}
            {{ exceptions.raise_compiler_error(
                "Raw table '" ~ table_name ~ "' is required but neither " ~ raw_path ~ "/" ~ table_name
                ~ ".parquet nor .csv exists. Set --vars '{raw_path: <dir>}' to the directory holding your raw files."
            ) }}
        {% endif %}

        {% if found_path is none %}
            {% set present = {} %}
            {% set from_clause = '(select 1) as empty_source where 1 = 0' %}
        {% else %}
            {% if reader == 'read_csv' %}
                {% set scan = "read_csv('" ~ found_path ~ "', header = true, all_varchar = true)" %}
            {% else %}
                {% set scan = "read_parquet('" ~ found_path ~ "')" %}
            {% endif %}
            {% set described = run_query('describe select * from ' ~ scan) %}
            {% set present = {} %}
            {% for row in described.rows %}
                {% do present.update({row[0] | lower: {'name': row[0], 'type': row[1] | upper}}) %}
            {% endfor %}
            {% set from_clause = scan ~ ' as raw_file' %}
        {% endif %}

        {% set missing_required = [] %}
        {% set missing_optional = [] %}
        {% set select_list = [] %}
        {% for column_name, column in source_node.columns.items() %}
            {% set contract_type = column.data_type %}
            {% if column_name in present %}
                {% set raw_name = adapter.quote(present[column_name]['name']) %}
                {% set raw_type = present[column_name]['type'] %}
                {% if contract_type == 'varchar' %}
                    {% set expression = 'cast(' ~ raw_name ~ ' as varchar)' %}
                {% elif contract_type == 'timestamp' and 'WITH TIME ZONE' in raw_type %}
                    {% set expression = "timezone('" ~ source_timezone ~ "', " ~ raw_name ~ ")" %}
                {% else %}
                    {% set expression = raw_name %}
                {% endif %}
            {% else %}
                {% if column.meta.get('required', false) and found_path is not none %}
                    {% do missing_required.append(column_name) %}
                {% endif %}
                {% do missing_optional.append(column_name) %}
                {% set expression = 'cast(null as ' ~ contract_type ~ ')' %}
            {% endif %}
            {% do select_list.append(expression ~ ' as ' ~ column_name) %}
        {% endfor %}

        {% if missing_required | length > 0 %}
            {{ exceptions.raise_compiler_error(
                "Raw file " ~ found_path ~ " lacks required column(s): " ~ missing_required | join(', ')
                ~ ". Columns present: " ~ present.keys() | list | sort | join(', ')
                ~ ". See the raw-data contract in README.md."
            ) }}
        {% endif %}

        {% do statements.append(
            'create or replace view ' ~ raw_schema ~ '.' ~ table_name ~ ' as select '
            ~ select_list | join(', ') ~ ' from ' ~ from_clause
        ) %}
        {% do summary.append(
            table_name ~ ': ' ~ (found_path if found_path is not none else 'absent (empty)')
            ~ ((' [filled with nulls: ' ~ missing_optional | join(', ') ~ ']') if found_path is not none and missing_optional else '')
        ) %}
    {% endfor %}

    {% for statement in statements %}
        {% do run_query(statement) %}
    {% endfor %}
    {% for line in summary %}
        {{ log('raw landing: ' ~ line, info=true) }}
    {% endfor %}
    {{ return('') }}
{% endmacro %}
