{#-
    Like `relationships`, but only when the parent has rows: optional source tables
    (customers, products) may be absent, and then every child key is accepted.
    Fails with the child rows whose key is missing from a non-empty parent.
-#}
{% test relationships_where_parent_nonempty(model, column_name, to, field) %}

with

child as (

    select {{ column_name }} from {{ model }}

),

parent as (

    select {{ field }} as parent_key from {{ to }}

),

parent_state as (

    select count(*) > 0 as has_rows from parent

),

orphans as (

    select child.{{ column_name }}
    from child
    cross join parent_state
    left join parent
        on child.{{ column_name }} = parent.parent_key
    where
        child.{{ column_name }} is not null
        and parent_state.has_rows
        and parent.parent_key is null

)

select * from orphans

{% endtest %}
