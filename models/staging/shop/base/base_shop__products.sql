-- One row per raw product row: typed, checked, with the reason it is quarantined (null when clean).
with

source as {{ inline_cte() }} (

    select * from {{ source('shop', 'products') }}

),

typed as (

    select
        {{ clean_string('source.product_id') }} as product_id,
        {{ clean_string('source.product_name') }} as product_name,
        lower({{ clean_string('source.category') }}) as category,
        {{ dbt.safe_cast('source.unit_cost', dbt.type_float()) }} as unit_cost,
        {{ raw_row('source') }} as raw_row
    from source

),

checked as {{ inline_cte() }} (

    select
        *,
        {{ first_failing_check([
            ('product_id is null', 'missing_product_id'),
            ('unit_cost < 0', 'negative_amount'),
        ]) }} as validation_reason
    from typed

),

{{ rank_duplicates('checked', ['product_id'], []) }},

final as (

    select
        product_id,
        product_name,
        category,
        unit_cost,
        {{ quarantine_columns() }}
    from ranked

)

select * from final
