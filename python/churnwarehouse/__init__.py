"""churnwarehouse: the Python side of the churn early-warning warehouse.

Importable modules used by the dbt Python models, the sample generator
(``python -m churnwarehouse.generate``) and the real-data loaders
(``python -m churnwarehouse.load``).

One process-wide default is set on import, before scikit-learn loads its OpenMP runtime:
``OMP_WAIT_POLICY=PASSIVE`` (unless the environment sets it). Inside ``dbt build`` the
model's OpenMP threads share two cores with DuckDB and dbt's other thread; with spinning
(active) waits, scoring 200k customers' reasons took 54 s instead of 6.5 s when another
process held a core.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
