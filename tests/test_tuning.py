"""Nested cross-validation, bootstrap interval, permutation p and tuned mappings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from twinme_lab.errors import UsageError
from twinme_lab.traits import tuning
from twinme_lab.traits.mapping import list_mappings, load_mapping, validate_mapping

FAST = tuning.TuneConfig(
    outer_folds=5,
    inner_folds=3,
    n_permutations=0,
    n_bootstrap=200,
    alphas=(1.0, 10.0, 100.0),
)


def signal_data(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two informative features among eight; y = 0.4 f0 + 0.3 f1 + N(0, 1)."""
    rng = np.random.default_rng(seed)
    index = [f"p{i:04d}" for i in range(n)]
    X = pd.DataFrame(
        rng.normal(size=(n, 8)), index=index, columns=[f"f{i}" for i in range(8)]
    )
    y = 0.4 * X["f0"] + 0.3 * X["f1"] + rng.normal(size=n)
    return X, pd.DataFrame({"Extraversion": y})


def test_recovers_known_signal():
    # The population correlation of y with its best linear predictor is
    # sqrt(0.25 / 1.25) = 0.447. With n = 400 the standard error of r is about
    # 0.04, so the bound 0.3 sits more than three standard errors below even
    # after the small loss from cross-validated shrinkage (p < 1e-3).
    X, y = signal_data(400, seed=11)
    (result,) = tuning.tune(X, y, FAST)
    assert result.n == 400
    assert result.r > 0.3
    assert result.r < 0.6
    assert result.ci_low < result.r < result.ci_high
    top = {row["feature"] for row in result.carriers[:2]}
    assert top == {"f0", "f1"}


def test_permutation_p_formula():
    X, y = signal_data(200, seed=3)
    config = tuning.TuneConfig(
        outer_folds=4,
        inner_folds=3,
        n_permutations=9,
        n_bootstrap=0,
        alphas=(1.0, 10.0),
    )
    (result,) = tuning.tune(X, y, config)
    # A strong signal beats every one of nine permutations: p = (0 + 1) / 10.
    assert result.p_permutation == pytest.approx(0.1)
    assert result.ci_low is None


def test_permutation_p_counts_exceedances():
    assert tuning._permutation_p(0.2, [0.1, 0.3, 0.25, -0.1]) == pytest.approx(3 / 5)
    assert tuning._permutation_p(None, [0.1]) is None


class RowRecorder(BaseEstimator, TransformerMixin):
    """Pass-through transformer that records the first-column values it is fit on."""

    seen: list[set] = []

    def fit(self, X, y=None):
        RowRecorder.seen.append(set(np.asarray(X)[:, 0].tolist()))
        return self

    def transform(self, X):
        return X


def recording_factory(config, inner_cv):
    pipeline = Pipeline([("record", RowRecorder()), ("model", Ridge())])
    return GridSearchCV(pipeline, {"model__alpha": [1.0, 10.0]}, cv=inner_cv)


def test_test_fold_rows_never_fitted():
    X, y = signal_data(60, seed=5)
    values = X.to_numpy()
    # Column 0 is continuous, so its values identify rows.
    outer = list(tuning.KFold(5, shuffle=True, random_state=0).split(values))
    for train, test in outer:
        RowRecorder.seen = []
        tuning.nested_cv_predict(
            values,
            y["Extraversion"].to_numpy(),
            FAST,
            [(train, test)],
            recording_factory,
        )
        test_values = set(values[test, 0].tolist())
        assert RowRecorder.seen
        for fitted in RowRecorder.seen:
            assert not fitted & test_values


def test_default_mapping_figures():
    X, y = signal_data(300, seed=7)
    mapping = {"Extraversion": {"f0": 1.0, "f1": 1.0}}
    (result,) = tuning.tune(X, y, FAST, default_mapping=mapping)
    expected = np.corrcoef(
        (
            (X["f0"] - X["f0"].mean()) / X["f0"].std(ddof=1)
            + (X["f1"] - X["f1"].mean()) / X["f1"].std(ddof=1)
        )
        / 2,
        y["Extraversion"],
    )[0, 1]
    assert result.default_r == pytest.approx(expected)
    assert result.default_ci_low < result.default_r < result.default_ci_high


def test_missing_values_imputed_inside_pipeline():
    X, y = signal_data(200, seed=9)
    X.iloc[::7, 0] = np.nan
    X["empty"] = np.nan
    (result,) = tuning.tune(X, y, FAST)
    assert result.r is not None
    assert "empty" not in result.weights


def test_too_few_participants_rejected():
    X, y = signal_data(12, seed=1)
    with pytest.raises(UsageError, match="12 participants"):
        tuning.tune(X, y, FAST)


def test_unknown_model_rejected():
    X, y = signal_data(50, seed=1)
    with pytest.raises(UsageError, match="lasso"):
        tuning.tune(X, y, tuning.TuneConfig(model="lasso"))


def test_elastic_net_runs():
    X, y = signal_data(200, seed=13)
    config = tuning.TuneConfig(
        model="elasticnet",
        outer_folds=4,
        inner_folds=3,
        n_permutations=0,
        n_bootstrap=0,
        alphas=(0.01, 0.1),
        l1_ratios=(0.5,),
    )
    (result,) = tuning.tune(X, y, config)
    assert result.r > 0.2
    assert {"alpha", "l1_ratio"} <= set(result.chosen_params[0])


def test_fingerprint_ignores_order_and_sees_values():
    X, y = signal_data(30, seed=2)
    base = tuning.data_fingerprint(X, y)
    shuffled = X.sample(frac=1.0, random_state=1)[list(reversed(X.columns))]
    assert tuning.data_fingerprint(shuffled, y) == base
    changed = X.copy()
    changed.iloc[0, 0] += 1e-9
    assert tuning.data_fingerprint(changed, y) != base


def test_tuned_mapping_document():
    X, y = signal_data(200, seed=4)
    y = y.rename(columns={"Extraversion": "extraversion"})
    results = tuning.tune(X, y, FAST)
    fingerprint = tuning.data_fingerprint(X, y)
    mapping = tuning.tuned_mapping(
        results,
        base=load_mapping("default-1"),
        instrument="ipip50",
        fingerprint=fingerprint,
        config=FAST,
    )
    validate_mapping(mapping, "test")
    assert mapping["version"].startswith("default-1+tuned.")
    assert mapping["instrument"] == "ipip50"
    assert mapping["n_participants"] == 200
    assert mapping["data_fingerprint"] == fingerprint
    entries = mapping["traits"]["extraversion"]
    assert {e["feature"] for e in entries} == set(X.columns)
    assert all(e["status"] == "tuned" for e in entries)
    assert mapping["metrics"]["extraversion"]["r"] == results[0].r
    assert mapping["reference_values"]["features"]["f0"]["sd"] > 0
    # Traits that were not tuned keep the base mapping's entries.
    assert (
        mapping["traits"]["openness"] == load_mapping("default-1")["traits"]["openness"]
    )


def test_saved_mapping_is_listed_and_used(workspace):
    X, y = signal_data(200, seed=6)
    y = y.rename(columns={"Extraversion": "extraversion"})
    results = tuning.tune(X, y, FAST)
    document = tuning.tuned_mapping(
        results,
        base=load_mapping("default-1"),
        instrument="ipip50",
        fingerprint=tuning.data_fingerprint(X, y),
        config=FAST,
        version="tuned-test-1",
    )
    path = tuning.save_mapping(workspace, document)
    assert path.is_file()
    assert "tuned-test-1" in set(list_mappings(workspace)["version"])
    with workspace.connect() as con:
        row = con.execute(
            "SELECT instrument, n_participants, data_fingerprint FROM trait_mappings "
            "WHERE version = 'tuned-test-1'"
        ).fetchone()
    assert row == ("ipip50", 200, document["data_fingerprint"])
    tuning.use_mapping(workspace, "tuned-test-1")
    assert load_mapping(None, workspace)["version"] == "tuned-test-1"
    with pytest.raises(UsageError, match="already exists"):
        tuning.save_mapping(workspace, document)
