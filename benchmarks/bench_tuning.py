"""Benchmark: nested-CV tuning, and recovery of simulated traits.

Part 1, speed. Tunes 1,000 participants x 100 features x 5 traits with the
package's nested cross-validation (``twinme_lab.traits.tuning``). That is 5 outer
folds, and in each a GridSearchCV over 5 ridge penalties with 5 inner folds, with
median imputation and scaling inside the folds. It reports the time without
permutations and the time per permutation, beside a plain scikit-learn script
doing the same nested CV (``cross_val_predict`` of the same GridSearchCV
pipeline on the same folds).
Data: standard-normal features, 5% missing at random, each trait a linear
function of ten features plus noise.

Part 2, recovery. Simulates cohorts with the default design
(``twinme_lab.simulate``), tunes every trait (5 x 5 nested CV, no
permutations) and reports the ratio of cross-validated r to the trait's ceiling,
averaged over seeds. Target: at least 0.8 with N = 1,000.

Usage::

    .venv/bin/python benchmarks/bench_tuning.py [--speed] [--recovery]
        [--participants 1000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, cross_val_predict

from twinme_lab import simulate
from twinme_lab.traits import tuning


def speed_data(n: int, p: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    targets = {}
    for k, trait in enumerate(simulate.TRAITS):
        weights = np.zeros(p)
        weights[k * 10 : (k + 1) * 10] = 0.15
        targets[trait] = X @ weights + rng.standard_normal(n)
    X[rng.random(X.shape) < 0.05] = np.nan
    index = [f"p{i:05d}" for i in range(n)]
    features = pd.DataFrame(X, index=index, columns=[f"f{j:03d}" for j in range(p)])
    return features, pd.DataFrame(targets, index=index)


def plain_sklearn(features: pd.DataFrame, scores: pd.DataFrame, config) -> float:
    """The same nested CV written directly with scikit-learn; returns seconds."""
    started = time.perf_counter()
    X = features.to_numpy()
    for trait in scores.columns:
        y = scores[trait].to_numpy()
        outer = KFold(config.outer_folds, shuffle=True, random_state=config.seed)
        inner = KFold(config.inner_folds, shuffle=True, random_state=config.seed)
        cross_val_predict(tuning.make_pipeline(config, inner), X, y, cv=outer)
    return time.perf_counter() - started


def run_speed(n: int, p: int, permutations: int) -> None:
    features, scores = speed_data(n, p, seed=1)
    base = tuning.TuneConfig(n_permutations=0, n_bootstrap=1000)
    started = time.perf_counter()
    tuning.tune(features, scores, base)
    no_perm = time.perf_counter() - started

    with_perm = tuning.TuneConfig(n_permutations=permutations, n_bootstrap=1000)
    started = time.perf_counter()
    tuning.tune(features, scores, with_perm)
    per_permutation = (time.perf_counter() - started - no_perm) / permutations

    plain = plain_sklearn(features, scores, base)
    print(f"speed: {n} participants x {p} features x 5 traits, 5x5 nested CV")
    print(f"  twinme tune, no permutations:   {no_perm:8.2f} s")
    print(
        f"  twinme tune, per permutation:   {per_permutation:8.2f} s "
        f"(from {permutations} permutations)"
    )
    print(f"  plain scikit-learn nested CV:   {plain:8.2f} s")
    print(f"  ratio twinme / plain:           {no_perm / plain:8.2f}")


def run_recovery(n: int, seeds: int) -> None:
    config = tuning.TuneConfig(n_permutations=0, n_bootstrap=0)
    ratios = {trait: [] for trait in simulate.TRAITS}
    for seed in range(1, seeds + 1):
        started = time.perf_counter()
        cohort = simulate.simulate_cohort(n, seed)
        scores = simulate.questionnaire_scores(cohort.answers)
        ceilings = cohort.ceilings.set_index("trait")["ceiling"]
        results = tuning.tune(cohort.features, scores, config)
        line = []
        for res in results:
            ratio = res.r / ceilings[res.trait]
            ratios[res.trait].append(ratio)
            line.append(
                f"{res.trait} r={res.r:.3f} ceiling="
                f"{ceilings[res.trait]:.3f} ratio={ratio:.2f}"
            )
        print(
            f"  seed {seed} ({time.perf_counter() - started:.0f} s): " + "; ".join(line)
        )
    print(f"recovery: N = {n}, mean over {seeds} seeds (target >= 0.8)")
    for trait, values in ratios.items():
        print(f"  {trait:18s} {np.mean(values):.2f}  (min {np.min(values):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--recovery", action="store_true")
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--permutations", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    both = not (args.speed or args.recovery)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    if args.speed or both:
        run_speed(args.participants, args.features, args.permutations)
    if args.recovery or both:
        run_recovery(args.participants, args.seeds)


if __name__ == "__main__":
    main()
