-- One row per raw customer row: typed, checked, with the reason it is quarantined (null when clean).
-- A malformed email is repaired (email nulled, customer kept) rather than rejected.
with

source as {{ inline_cte() }} (

    select * from {{ source('shop', 'customers') }}

),

typed as (

    select
        {{ clean_string('source.customer_id') }} as customer_id,
        lower({{ clean_string('source.email') }}) as email,
        {{ clean_string('source.first_name') }} as first_name,
        {{ clean_string('source.country') }} as country,
        {{ to_utc_timestamp('source.signed_up_at') }} as signed_up_at,
        {{ dbt.safe_cast('source.marketing_opt_in', dbt.type_boolean()) }} as is_marketing_opted_in,
        {{ raw_row('source') }} as raw_row
    from source

),

checked as {{ inline_cte() }} (

    select
        *,
        {{ first_failing_check([
            ('customer_id is null', 'missing_customer_id'),
            ('email is not null and not ' ~ is_valid_email('email'), 'malformed_email'),
        ]) }} as validation_reason
    from typed

),

{{ rank_duplicates('checked', ['customer_id'], ['signed_up_at']) }},

final as (

    select
        customer_id,
        case when validation_reason = 'malformed_email' then null else email end as email,
        first_name,
        country,
        signed_up_at,
        is_marketing_opted_in,
        {{ quarantine_columns(repairable_reasons=['malformed_email']) }}
    from ranked

)

select * from final
