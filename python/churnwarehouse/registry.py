"""The model registry: each trained churn model version on disk with its metadata.

Layout: ``<registry>/<model_version>/model.joblib`` (the fitted ``ChurnModel``) and
``metadata.json`` (version, trained_at, training window, features, hyperparameters, class
balance, library versions, validation metrics, model comparison, calibration bins,
permutation importance, the artifact's sha256). The version id is a hash of the training data,
the settings, the scoring date and the library versions, so a rebuild on the same data finds
its version already registered and loads it: same data and seed, identical scores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from churnwarehouse.modeling import ChurnModel, TrainingConfig, library_versions, train_churn_model, training_fingerprint

ARTIFACT = "model.joblib"
METADATA = "metadata.json"


class RegistryError(RuntimeError):
    """A registered artifact is missing or does not match its recorded hash."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_version(labelled: pd.DataFrame, scoring_date: dt.date, config: TrainingConfig,
                  scoring_rows: pd.DataFrame | None = None) -> str:
    versions = {**library_versions(), "scoring_date": str(scoring_date)}
    if scoring_rows is not None:
        # the seasonal shift may use the scoring snapshot's features (modeling.seasonal_offset)
        versions["scoring_rows"] = training_fingerprint(scoring_rows, config, {})
    return training_fingerprint(labelled, config, versions)


def save(registry: Path, version: str, model: ChurnModel, reports: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Write the artifact and its metadata; returns the metadata."""
    folder = Path(registry) / version
    folder.mkdir(parents=True, exist_ok=True)
    artifact = folder / ARTIFACT
    joblib.dump(model, artifact)
    metadata = {
        "model_version": version,
        "trained_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **model.metadata,
        "library_versions": library_versions(),
        "artifact_sha256": _sha256(artifact),
        "reports": {name: json.loads(frame.to_json(orient="records")) for name, frame in reports.items()},
    }
    (folder / METADATA).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str))
    return metadata


def load(registry: Path, version: str) -> tuple[ChurnModel, dict[str, Any]]:
    """Load one version, checking the artifact against its recorded hash."""
    folder = Path(registry) / version
    metadata_path, artifact = folder / METADATA, folder / ARTIFACT
    if not metadata_path.exists() or not artifact.exists():
        raise RegistryError(f"model version {version} is not in the registry at {registry}")
    metadata = json.loads(metadata_path.read_text())
    if _sha256(artifact) != metadata["artifact_sha256"]:
        raise RegistryError(f"artifact of model version {version} does not match its recorded sha256")
    return joblib.load(artifact), metadata


def list_metadata(registry: Path) -> list[dict[str, Any]]:
    """Metadata of every registered version, oldest first."""
    registry = Path(registry)
    if not registry.exists():
        return []
    found = [json.loads(p.read_text()) for p in registry.glob(f"*/{METADATA}")]
    return sorted(found, key=lambda m: (m["trained_at"], m["model_version"]))


def train_or_load(registry: Path, labelled: pd.DataFrame, scoring_date: dt.date,
                  config: TrainingConfig | None = None, scoring_rows: pd.DataFrame | None = None,
                  ) -> tuple[str, ChurnModel, dict[str, Any]]:
    """The model for these training rows: loaded if this exact version exists, else trained and saved."""
    config = config or TrainingConfig()
    version = model_version(labelled, scoring_date, config, scoring_rows)
    folder = Path(registry) / version
    if (folder / METADATA).exists():
        model, metadata = load(registry, version)
        return version, model, metadata
    model, reports = train_churn_model(labelled, scoring_date, config, scoring_rows)
    return version, model, save(registry, version, model, reports)


REGISTRY_COLUMNS = {
    "model_version": "string", "is_current": "bool", "trained_at": "datetime64[us]", "scoring_date": "datetime64[us]",
    "training_window_start": "datetime64[us]", "training_window_end": "datetime64[us]",
    "validation_snapshots": "string", "family": "string", "hyperparameters": "string",
    "selection_criterion": "string", "feature_columns": "string", "feature_count": "int64",
    "training_row_count": "int64", "training_churn_rate": "float64", "baseline_stack": "string",
    "logit_offset": "float64",
    "offset_reference_date": "string", "operating_threshold": "float64", "library_versions": "string",
    "config": "string", "artifact_sha256": "string", "selection_reason": "string",
}


def _typed_empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def registry_frame(registry: Path, current_version: str | None, selection_reason: str | None = None) -> pd.DataFrame:
    """One row per registered version (the registry table); the current one says why it was chosen."""
    rows = []
    for m in list_metadata(registry):
        rows.append({
            "model_version": m["model_version"],
            "is_current": m["model_version"] == current_version,
            "trained_at": pd.Timestamp(m["trained_at"]).tz_localize(None),
            "scoring_date": pd.Timestamp(m["scoring_date"]),
            "training_window_start": pd.Timestamp(m["training_window_start"]),
            "training_window_end": pd.Timestamp(m["training_window_end"]),
            "validation_snapshots": json.dumps(m["validation_snapshots"]),
            "family": m["family"],
            "hyperparameters": json.dumps(m["parameters"], sort_keys=True),
            "selection_criterion": m["selection_criterion"],
            "feature_columns": json.dumps(m["feature_columns"]),
            "feature_count": len(m["feature_columns"]),
            "training_row_count": m["training_row_count"],
            "training_churn_rate": m["training_churn_rate"],
            "baseline_stack": json.dumps(m["baseline_stack"], sort_keys=True) if m.get("baseline_stack") else None,
            "logit_offset": m["logit_offset"],
            "offset_reference_date": m["offset_reference_date"],
            "operating_threshold": m["threshold"],
            "library_versions": json.dumps(m["library_versions"], sort_keys=True),
            "config": json.dumps(m["config"], sort_keys=True),
            "artifact_sha256": m["artifact_sha256"],
            "selection_reason": selection_reason if m["model_version"] == current_version else None,
        })
    return pd.DataFrame(rows) if rows else _typed_empty(REGISTRY_COLUMNS)


def report_frame(registry: Path, report: str) -> pd.DataFrame:
    """A report (``comparison``, ``calibration``, ``importance``) of every version, with its version id."""
    frames = []
    for m in list_metadata(registry):
        frame = pd.DataFrame(m["reports"][report])
        frame.insert(0, "model_version", m["model_version"])
        frames.append(frame)
    if frames:
        return pd.concat(frames, ignore_index=True)
    empty_columns = {
        "comparison": {"family": "string", "parameters": "string", "roc_auc": "float64", "is_chosen": "bool"},
        "calibration": {"bin_index": "int64", "row_count": "int64", "mean_probability": "float64",
                        "observed_rate": "float64"},
        "importance": {"feature": "string", "importance_mean": "float64", "importance_rank": "int64"},
    }[report]
    return _typed_empty({"model_version": "string", **empty_columns})


def metrics_frame(registry: Path) -> pd.DataFrame:
    """Validation (out-of-time) metrics of every version: the metrics history."""
    rows = []
    for m in list_metadata(registry):
        rows.append({
            "model_version": m["model_version"],
            "trained_at": pd.Timestamp(m["trained_at"]).tz_localize(None),
            "evaluated_on": "validation snapshots (out of time): " + ", ".join(m["validation_snapshots"]),
            "family": m["family"],
            **m["validation_metrics"],
            "training_row_count": m["training_row_count"],
            "training_churn_rate": m["training_churn_rate"],
        })
    if not rows:
        return _typed_empty({"model_version": "string", "trained_at": "datetime64[us]", "evaluated_on": "string",
                             "family": "string", "roc_auc": "float64", "expected_calibration_error": "float64"})
    return pd.DataFrame(rows)
