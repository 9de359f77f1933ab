"""churnwarehouse: the Python side of the churn early-warning warehouse.

Importable, side-effect-free modules used by the dbt Python models, the sample
generator (``python -m churnwarehouse.generate``) and the real-data loaders
(``python -m churnwarehouse.load``).
"""

__version__ = "0.1.0"
