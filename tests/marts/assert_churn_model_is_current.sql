-- Warns when this build has no current churn model (too little labelled history to train and
-- validate out of time): churn_scores is then empty. Returns one row saying so.
{{ config(severity='warn') }}

with

current_versions as (

    select count(*) as current_count
    from {{ ref('ml_churn_model_registry') }}
    where is_current

)

select 'no churn model could be trained: fewer than 2 labelled snapshots with both outcomes' as problem
from current_versions
where current_count = 0
