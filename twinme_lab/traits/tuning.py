"""Tune and validate trait mappings against questionnaire scores.

For each trait the model is a scikit-learn Pipeline (median imputation, then
standardization, then ridge or elastic net) tuned by an inner cross-validation
inside each outer training fold. Imputation, scaling and the penalty are all
learned from the outer training fold only, so nothing from an outer test fold
reaches the predictions made for it.

Reported per trait:

- ``r``: Pearson correlation between the out-of-fold predictions and the
  questionnaire scores. Predictions are centred within each outer test fold
  first: a fold's mean prediction carries only its training fold's mean score,
  which under no signal correlates negatively with the test fold's scores (about
  ``-sqrt((k - 1) / n)`` for k folds), and centring uses no questionnaire data;
- ``ci_low``/``ci_high``: a 95% percentile interval of that correlation from a
  bootstrap over participants (pairs of prediction and score are resampled);
- ``p_permutation``: ``(b + 1) / (B + 1)``, where ``b`` counts permutations of the
  questionnaire scores whose r, from the same nested procedure on the same folds,
  is at least the observed r (a one-sided test of positive prediction);
- the same r, interval and p for the default mapping's fixed weights;
- the features that carry the trait: standardized coefficients of the model
  refitted on every participant, with their sign agreement across outer folds.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import TwinMeError, UsageError

MODELS = ("ridge", "elasticnet")
DEFAULT_RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
DEFAULT_ENET_ALPHAS = (0.001, 0.01, 0.1, 1.0)
DEFAULT_L1_RATIOS = (0.1, 0.5, 0.9)
MIN_PARTICIPANTS = 20


@dataclass(frozen=True)
class TuneConfig:
    """Settings of one tuning run."""

    model: str = "ridge"
    outer_folds: int = 5
    inner_folds: int = 5
    n_permutations: int = 100
    n_bootstrap: int = 1000
    seed: int = 0
    alphas: tuple[float, ...] | None = None
    l1_ratios: tuple[float, ...] = DEFAULT_L1_RATIOS
    n_jobs: int | None = None

    def validate(self) -> None:
        if self.model not in MODELS:
            raise UsageError(
                f"Unknown model {self.model!r}; use one of {', '.join(MODELS)}."
            )
        for name in ("outer_folds", "inner_folds"):
            if getattr(self, name) < 2:
                raise UsageError(f"{name} must be at least 2.")
        if self.n_permutations < 0 or self.n_bootstrap < 0:
            raise UsageError("n_permutations and n_bootstrap must be 0 or more.")


@dataclass
class TraitResult:
    """Cross-validated performance of one trait, tuned and default."""

    trait: str
    n: int
    r: float | None
    ci_low: float | None
    ci_high: float | None
    p_permutation: float | None
    default_r: float | None = None
    default_ci_low: float | None = None
    default_ci_high: float | None = None
    default_p_permutation: float | None = None
    chosen_params: list[dict] = field(default_factory=list)
    carriers: list[dict] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    intercept: float | None = None
    reference: dict[str, dict] = field(default_factory=dict)


def make_pipeline(config: TuneConfig, inner_cv) -> GridSearchCV:
    """Build the imputation, scaling and model pipeline tuned by an inner CV."""
    if config.model == "ridge":
        model = Ridge()
        grid = {"model__alpha": list(config.alphas or DEFAULT_RIDGE_ALPHAS)}
    else:
        model = ElasticNet(max_iter=10000)
        grid = {
            "model__alpha": list(config.alphas or DEFAULT_ENET_ALPHAS),
            "model__l1_ratio": list(config.l1_ratios),
        }
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", model),
        ]
    )
    return GridSearchCV(
        pipeline,
        grid,
        cv=inner_cv,
        scoring="neg_mean_squared_error",
        n_jobs=config.n_jobs,
    )


def pearson_r(a: np.ndarray, b: np.ndarray) -> float | None:
    """Return Pearson's r, or None when either side has no variance."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    da = a - a.mean()
    db = b - b.mean()
    denominator = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if denominator == 0.0:
        return None
    return float(np.dot(da, db) / denominator)


def bootstrap_interval(
    predictions: np.ndarray, scores: np.ndarray, n_bootstrap: int, seed: int
) -> tuple[float | None, float | None]:
    """Return a 95% percentile interval of r from resampling participants."""
    if n_bootstrap == 0:
        return None, None
    rng = np.random.default_rng(seed)
    n = len(scores)
    values = []
    for _ in range(n_bootstrap):
        index = rng.integers(0, n, n)
        r = pearson_r(predictions[index], scores[index])
        if r is not None:
            values.append(r)
    if not values:
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


PipelineFactory = Callable[[TuneConfig, object], BaseEstimator]


def nested_cv_predict(
    X: np.ndarray,
    y: np.ndarray,
    config: TuneConfig,
    outer_splits: list[tuple[np.ndarray, np.ndarray]],
    factory: PipelineFactory = make_pipeline,
) -> tuple[np.ndarray, list[dict], list[np.ndarray]]:
    """Return out-of-fold predictions, the chosen parameters and fold coefficients.

    Every fold's pipeline is fitted on that fold's training rows only, and each
    fold's predictions are centred on their own mean.
    """
    predictions = np.empty(len(y), dtype=float)
    chosen = []
    coefficients = []
    for fold, (train, test) in enumerate(outer_splits):
        inner = KFold(config.inner_folds, shuffle=True, random_state=config.seed + fold)
        search = factory(config, inner)
        search.fit(X[train], y[train])
        fold_predictions = search.predict(X[test])
        predictions[test] = fold_predictions - fold_predictions.mean()
        best = getattr(search, "best_params_", {})
        chosen.append({k.removeprefix("model__"): v for k, v in best.items()})
        estimator = getattr(search, "best_estimator_", search)
        model = getattr(estimator, "named_steps", {}).get("model")
        if model is not None and hasattr(model, "coef_"):
            coefficients.append(np.asarray(model.coef_, dtype=float))
    return predictions, chosen, coefficients


def default_mapping_predictions(
    features: pd.DataFrame, weights: Mapping[str, float]
) -> np.ndarray | None:
    """Score participants with a mapping's fixed weights on cohort z-scores.

    Each feature is standardized against the cohort (mean and sample SD; no
    questionnaire data is used) and the weighted sum is divided by the absolute
    weight of the features a participant has, as ``twinme_lab.traits.scoring``
    combines them. Returns None when no weighted feature is in ``features``.
    """
    used = {name: w for name, w in weights.items() if w and name in features.columns}
    if not used:
        return None
    columns = features[list(used)]
    z = (columns - columns.mean()) / columns.std(ddof=1).replace(0.0, np.nan)
    w = pd.Series(used)
    present = z.notna()
    total = (z.fillna(0.0) * w).sum(axis=1)
    weight_present = (present * w.abs()).sum(axis=1)
    return (total / weight_present.replace(0.0, np.nan)).to_numpy(dtype=float)


def _permutation_p(observed: float | None, null: list[float]) -> float | None:
    if observed is None or not null:
        return None
    exceed = sum(1 for value in null if value >= observed)
    return (exceed + 1) / (len(null) + 1)


def _default_metrics(
    predictions: np.ndarray | None, y: np.ndarray, config: TuneConfig
) -> dict:
    empty = {
        "default_r": None,
        "default_ci_low": None,
        "default_ci_high": None,
        "default_p_permutation": None,
    }
    if predictions is None:
        return empty
    keep = ~np.isnan(predictions)
    if keep.sum() < 3:
        return empty
    pred, target = predictions[keep], y[keep]
    r = pearson_r(pred, target)
    low, high = bootstrap_interval(pred, target, config.n_bootstrap, config.seed + 1)
    rng = np.random.default_rng(config.seed + 2)
    null = []
    for _ in range(config.n_permutations):
        value = pearson_r(pred, rng.permutation(target))
        if value is not None:
            null.append(value)
    return {
        "default_r": r,
        "default_ci_low": low,
        "default_ci_high": high,
        "default_p_permutation": _permutation_p(r, null),
    }


def _carriers(
    names: list[str], final_coef: np.ndarray, fold_coefs: list[np.ndarray]
) -> list[dict]:
    rows = []
    stacked = np.vstack(fold_coefs) if fold_coefs else np.empty((0, len(names)))
    for index, name in enumerate(names):
        coef = float(final_coef[index])
        if stacked.shape[0]:
            signs = np.sign(stacked[:, index])
            agreement = float(np.mean(signs == np.sign(coef))) if coef else 0.0
        else:
            agreement = None
        rows.append({"feature": name, "coefficient": coef, "sign_agreement": agreement})
    rows.sort(key=lambda row: (-abs(row["coefficient"]), row["feature"]))
    return rows


def tune_trait(
    features: pd.DataFrame,
    scores: pd.Series,
    config: TuneConfig,
    default_weights: Mapping[str, float] | None = None,
    factory: PipelineFactory = make_pipeline,
) -> TraitResult:
    """Run nested CV, bootstrap and permutations for one trait.

    ``features`` has one row per participant (index: participant id) and one
    column per feature, NaN where unmeasured; ``scores`` holds the questionnaire
    scores. Participants without a score are left out.
    """
    config.validate()
    trait = str(scores.name)
    scores = scores.dropna()
    frame = features.loc[features.index.intersection(scores.index)].sort_index()
    frame = frame.dropna(axis=1, how="all")
    y = scores.loc[frame.index].to_numpy(dtype=float)
    n = len(y)
    if n < max(MIN_PARTICIPANTS, 2 * config.outer_folds):
        raise UsageError(
            f"Trait {trait} has questionnaire scores and features for {n} "
            f"participants; tuning needs at least "
            f"{max(MIN_PARTICIPANTS, 2 * config.outer_folds)}."
        )
    if frame.shape[1] == 0:
        raise UsageError(f"Trait {trait} has no feature with any data.")
    X = frame.to_numpy(dtype=float)
    outer = list(
        KFold(config.outer_folds, shuffle=True, random_state=config.seed).split(X)
    )

    predictions, chosen, fold_coefs = nested_cv_predict(X, y, config, outer, factory)
    r = pearson_r(predictions, y)
    low, high = bootstrap_interval(predictions, y, config.n_bootstrap, config.seed)

    rng = np.random.default_rng(config.seed + 3)
    null = []
    for _ in range(config.n_permutations):
        shuffled = rng.permutation(y)
        permuted, _, _ = nested_cv_predict(X, shuffled, config, outer, factory)
        value = pearson_r(permuted, shuffled)
        if value is not None:
            null.append(value)

    final = factory(
        config, KFold(config.inner_folds, shuffle=True, random_state=config.seed)
    )
    final.fit(X, y)
    estimator = final.best_estimator_
    model = estimator.named_steps["model"]
    scaler = estimator.named_steps["scale"]
    coef = np.asarray(model.coef_, dtype=float)
    names = list(frame.columns)

    default_predictions = None
    if default_weights:
        default_predictions = default_mapping_predictions(frame, default_weights)

    result = TraitResult(
        trait=trait,
        n=n,
        r=r,
        ci_low=low,
        ci_high=high,
        p_permutation=_permutation_p(r, null),
        chosen_params=chosen,
        carriers=_carriers(names, coef, fold_coefs),
        weights={name: float(c) for name, c in zip(names, coef, strict=True)},
        intercept=float(model.intercept_),
        reference={
            name: {"mean": float(m), "sd": float(s)}
            for name, m, s in zip(names, scaler.mean_, scaler.scale_, strict=True)
        },
        **_default_metrics(default_predictions, y, config),
    )
    return result


def tune(
    features: pd.DataFrame,
    questionnaire: pd.DataFrame,
    config: TuneConfig | None = None,
    default_mapping: Mapping[str, Mapping[str, float]] | None = None,
    feature_set: list[str] | None = None,
) -> list[TraitResult]:
    """Tune every trait column of ``questionnaire`` (index: participant id)."""
    config = config or TuneConfig()
    if feature_set is not None:
        missing = sorted(set(feature_set) - set(features.columns))
        if missing:
            raise UsageError(f"Unknown features in the feature set: {missing}.")
        features = features[feature_set]
    results = []
    for trait in questionnaire.columns:
        weights = (default_mapping or {}).get(trait)
        results.append(tune_trait(features, questionnaire[trait], config, weights))
    return results


def data_fingerprint(features: pd.DataFrame, questionnaire: pd.DataFrame) -> str:
    """Return a SHA-256 of the participants, features and scores tuned on.

    Rows and columns are sorted and values written with 17 significant digits, so
    the same data gives the same fingerprint whatever order it arrived in.
    """
    digest = hashlib.sha256()
    for frame in (features, questionnaire):
        ordered = frame.sort_index().sort_index(axis=1)
        digest.update(json.dumps([str(c) for c in ordered.columns]).encode())
        for pid, row in ordered.iterrows():
            values = ["null" if pd.isna(v) else format(float(v), ".17g") for v in row]
            digest.update(f"{pid}\t{','.join(values)}\n".encode())
    return digest.hexdigest()


def results_table(results: list[TraitResult]) -> pd.DataFrame:
    """Return the per-trait summary: r, interval, p, default r and N."""
    rows = [
        {
            "trait": res.trait,
            "r": res.r,
            "ci_low": res.ci_low,
            "ci_high": res.ci_high,
            "p_permutation": res.p_permutation,
            "default_r": res.default_r,
            "n": res.n,
        }
        for res in results
    ]
    return pd.DataFrame(rows)


def tuned_mapping(
    results: list[TraitResult],
    *,
    base: Mapping | None,
    instrument: str,
    fingerprint: str,
    config: TuneConfig,
    version: str | None = None,
    created_at: datetime | None = None,
) -> dict:
    """Build a mapping document, in the format of ``twinme_lab.traits.mapping``.

    Each trait's weights are the refitted model's coefficients on standardized
    features, with status ``tuned``. ``reference_values`` holds the means and SDs
    of the tuning sample, so scoring a small cohort standardizes as the model
    did. Traits that were not tuned keep the base mapping's entries. The
    document also records the metrics, instrument, N and data fingerprint.
    """
    created_at = created_at or datetime.now(UTC)
    stamp = created_at.strftime("%Y%m%dT%H%M%SZ")
    base_version = base.get("version") if base else None
    version = version or f"{base_version or 'tuned'}+tuned.{stamp}.{fingerprint[:8]}"
    source = f"{config.model} tuned on {instrument} scores, data {fingerprint[:12]}"
    traits = {
        trait: [dict(entry) for entry in entries]
        for trait, entries in (base or {}).get("traits", {}).items()
    }
    reference = dict((base or {}).get("reference_values", {}).get("features", {}))
    for res in results:
        traits[res.trait] = [
            {
                "feature": name,
                "weight": weight,
                "status": "tuned",
                "note": f"{source}, N={res.n}",
            }
            for name, weight in sorted(res.weights.items())
        ]
        for name, ref in res.reference.items():
            if ref["sd"] > 0:
                reference[name] = {
                    "mean": ref["mean"],
                    "sd": ref["sd"],
                    "source": "tuning sample",
                }
    for trait in TRAITS:
        traits.setdefault(trait, [])
    metrics = {
        res.trait: {
            key: value
            for key, value in asdict(res).items()
            if key
            not in {
                "weights",
                "carriers",
                "chosen_params",
                "trait",
                "reference",
                "intercept",
            }
        }
        for res in results
    }
    standardization = dict((base or {}).get("standardization", {}))
    standardization.setdefault("cohort_min_participants", 30)
    return {
        "version": version,
        "description": (
            f"Tuned from {base_version or 'no base mapping'} on {instrument} "
            f"questionnaire scores of {max((r.n for r in results), default=0)} "
            f"participants with nested cross-validation ({config.model})."
        ),
        "kind": "tuned",
        "base_version": base_version,
        "instrument": instrument,
        "n_participants": max((res.n for res in results), default=0),
        "data_fingerprint": fingerprint,
        "created_at": created_at.isoformat(),
        "model": config.model,
        "config": asdict(config),
        "metrics": metrics,
        "carriers": {res.trait: res.carriers for res in results},
        "standardization": standardization,
        "reference_values": {"source": "tuning sample", "features": reference},
        "sources": dict((base or {}).get("sources", {})),
        "traits": traits,
    }


TRAITS = (
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
)


def tuning_inputs(
    workspace, instrument: str = "ipip50", feature_set: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (features, questionnaire scores) as participant x column frames.

    Questionnaire scores are the instrument's trait scales; participants without
    any score of the instrument are left out by :func:`tune`.
    """
    from ..features import features_table
    from .questionnaires import questionnaire_table

    rows = features_table(workspace)
    features = rows.pivot(index="participant_id", columns="feature", values="value")
    if feature_set:
        missing = sorted(set(feature_set) - set(features.columns))
        if missing:
            raise UsageError(f"Unknown features in the feature set: {missing}.")
        features = features[feature_set]
    scores = questionnaire_table(workspace)
    scores = scores[(scores["instrument"] == instrument) & scores["trait"].notna()]
    if scores.empty:
        raise UsageError(
            f"No {instrument} questionnaire scores in this workspace; import "
            "answers with 'twinme-lab questionnaire import' first."
        )
    wide = scores.pivot(index="participant_id", columns="trait", values="score")
    wide = wide[[t for t in TRAITS if t in wide.columns]]
    return features.astype(float), wide.astype(float)


def mapping_weights(mapping: Mapping) -> dict[str, dict[str, float]]:
    """Return trait -> feature -> weight of a mapping document."""
    return {
        trait: {e["feature"]: float(e["weight"]) for e in entries}
        for trait, entries in mapping["traits"].items()
    }


def save_mapping(workspace, document: dict) -> Path:
    """Write a tuned mapping to ``mappings/`` and record it in ``trait_mappings``."""
    from ..store import transaction
    from .mapping import mapping_path, validate_mapping

    validate_mapping(document, "tuning result")
    path = mapping_path(workspace, document["version"])
    if path.exists():
        raise UsageError(f"A mapping file {path} already exists; nothing was written.")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=True, default=float) + "\n"
    with workspace.connect() as con:
        with transaction(con):
            con.execute(
                "INSERT INTO trait_mappings VALUES (?, ?, ?, ?, ?, ?, now())",
                [
                    document["version"],
                    document.get("base_version"),
                    document["instrument"],
                    document["n_participants"],
                    document["data_fingerprint"],
                    text,
                ],
            )
            workspace.audit(
                con, "mappings.tune", None, {"participants": document["n_participants"]}
            )
            partial = path.with_suffix(".json.partial")
            partial.write_text(text, encoding="utf-8")
            partial.replace(path)
    return path


def use_mapping(workspace, version: str) -> dict:
    """Make ``version`` the workspace's mapping for scoring and reports."""
    from ..store import transaction
    from .mapping import SETTING_KEY, load_mapping

    document = load_mapping(version, workspace)
    with workspace.connect() as con:
        with transaction(con):
            con.execute("DELETE FROM workspace_settings WHERE key = ?", [SETTING_KEY])
            con.execute(
                "INSERT INTO workspace_settings VALUES (?, ?)", [SETTING_KEY, version]
            )
            workspace.audit(con, "mappings.use", None, {})
    return document


TUNING_NOTEBOOK = "tune_trait_mappings.ipynb"


def notebook_file(name: str) -> Path:
    """Return a notebook from the repository's ``notebooks/``, else the package's."""
    from ..reports.runner import find_notebook

    return find_notebook(name)


def execute_notebook(workspace, name: str, parameters: dict, output: Path) -> Path:
    """Run a notebook with papermill in a fresh kernel; the key travels by env.

    The kernel gets only the derived database key, in its environment (see
    :func:`twinme_lab.reports.runner.kernel_environment`), never as a parameter,
    because papermill writes parameters into the output notebook. Raises
    :class:`TwinMeError` naming the failed cell.
    """
    import papermill

    from ..reports.runner import ReportKernel, kernel_environment, run_papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    kernel = ReportKernel(kernel_environment(workspace), output.parent)
    try:
        run_papermill(kernel, notebook_file(name), output, parameters, output.parent)
    except papermill.PapermillExecutionError as exc:
        # Drop the message's own final period, so the sentence does not end in "..".
        reason = str(exc.evalue).rstrip().removesuffix(".")
        raise TwinMeError(
            f"The notebook {name} failed in cell {exc.exec_count}: {exc.ename}: "
            f"{reason}. The partial notebook is {output}."
        ) from None
    return output


def check_tuning_options(
    workspace,
    base_mapping: str | None = None,
    instrument: str = "ipip50",
    feature_set: list[str] | None = None,
) -> None:
    """Raise when a tuning run with these options would fail on its input.

    The instrument must be registered and have trait scores in the workspace,
    the base mapping must exist, and every feature in ``feature_set`` must be
    declared and computed. An unknown instrument or feature raises
    :class:`UsageError` (exit 2). Missing data raises :class:`TwinMeError` and an
    unknown mapping :class:`NotFoundError` (both exit 1), as ``score`` does.
    """
    from ..features import definitions
    from .mapping import load_mapping
    from .questionnaires import get_instrument

    get_instrument(instrument)
    load_mapping(base_mapping, workspace)
    with workspace.connect() as con:
        stored = {
            name
            for (name,) in con.execute(
                "SELECT DISTINCT feature FROM features"
            ).fetchall()
        }
        answered = con.execute(
            "SELECT count(*) FROM questionnaire_scores "
            "WHERE instrument = ? AND trait IS NOT NULL",
            [instrument],
        ).fetchone()[0]
    if feature_set:
        declared = list(definitions())
        unknown = sorted(set(feature_set) - set(declared) - stored)
        if unknown:
            raise UsageError(
                f"Unknown feature {', '.join(map(repr, unknown))}. Valid names: "
                f"{', '.join(declared)}."
            )
        missing = sorted(set(feature_set) - stored)
        if missing:
            raise TwinMeError(
                f"Feature {', '.join(map(repr, missing))} is not computed in this "
                "workspace; run 'twinme-lab features' first."
            )
    if not answered:
        raise TwinMeError(
            f"No {instrument} questionnaire scores in this workspace; import "
            "answers with 'twinme-lab questionnaire import' first."
        )


def run_tuning(workspace, **parameters) -> dict:
    """Run the tuning notebook and return its ``tuning_results.json``.

    ``parameters`` are the notebook's (model, outer_folds, n_permutations, ...).
    They are checked with :func:`check_tuning_options` before anything is
    written. The executed notebook and the results go to
    ``<workspace>/tuning/<time>/``.
    """
    check_tuning_options(
        workspace,
        base_mapping=parameters.get("base_mapping"),
        instrument=parameters.get("instrument", "ipip50"),
        feature_set=parameters.get("feature_set"),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = workspace.root / "tuning" / stamp
    values = {
        "workspace": str(workspace.root.resolve()),
        "output_dir": str(folder.resolve()),
        **parameters,
    }
    execute_notebook(workspace, TUNING_NOTEBOOK, values, folder / TUNING_NOTEBOOK)
    result = json.loads((folder / "tuning_results.json").read_text())
    result["notebook"] = str(folder / TUNING_NOTEBOOK)
    return result
