"""The synthetic cohort: truth, generated exports, the pipeline on it, recovery.

Statistical tolerances are sized so that no test fails by chance more often than
one run in a thousand; each test states its reasoning. Seeds are fixed, so a run
is reproducible, but the bounds hold for any seed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from twinme_lab import participants, simulate
from twinme_lab.errors import InputError
from twinme_lab.features import features_table
from twinme_lab.traits import questionnaires, tuning
from twinme_lab.workspace import open_workspace

FAST = tuning.TuneConfig(
    inner_folds=3, alphas=(1.0, 10.0, 100.0), n_permutations=0, n_bootstrap=0
)


def test_traits_follow_dolan_correlations():
    # n = 20,000: the standard error of a correlation is below 1/sqrt(n) = 0.007,
    # so 0.035 is five standard errors; over 10 pairs the chance of any failure
    # is below 1e-5.
    dolan = simulate.load_dolan()
    z, scores = simulate.draw_traits(20_000, np.random.default_rng(1))
    observed = np.corrcoef(z.to_numpy(), rowvar=False)
    assert np.abs(observed - dolan["corr"]).max() < 0.035
    # Means on the 1-5 scale: SDs are below 0.46, so the standard error of a mean
    # is below 0.0033 and 0.02 is six of them.
    assert np.abs(scores.mean().to_numpy() - dolan["means"]).max() < 0.02


def test_latents_have_target_correlations():
    # 14 features x 5 traits = 70 correlations, each with a standard error below
    # 0.007 at n = 20,000; a bound of 0.035 (five standard errors) fails by chance
    # with probability below 70 * 6e-7 = 4e-5.
    effects = simulate.load_effects()
    rng = np.random.default_rng(2)
    z, _ = simulate.draw_traits(20_000, rng)
    latents = simulate.draw_latents(z, effects, rng)
    for feature, targets in effects.items():
        for trait in simulate.TRAITS:
            r = np.corrcoef(latents[feature], z[trait])[0, 1]
            assert abs(r - targets[trait]) < 0.035, (feature, trait, r)


def test_item_answers_follow_key():
    z, _ = simulate.draw_traits(3_000, np.random.default_rng(3))
    answers = simulate.generate_answers(z, np.random.default_rng(4), simulate.Design())
    assert answers.isin([1, 2, 3, 4, 5]).all().all()
    # Item 4 ("get stressed out easily") is minus-keyed on Emotional Stability, so
    # agreeing with it goes with high Neuroticism; item 1 is plus-keyed on
    # Extraversion. Loading 0.65 before cutting into five categories gives a
    # population correlation near 0.6; 0.45 is eight standard errors below.
    assert np.corrcoef(answers[4], z["neuroticism"])[0, 1] > 0.45
    assert np.corrcoef(answers[1], z["extraversion"])[0, 1] > 0.45
    # Item 6 ("don't talk a lot") is minus-keyed on Extraversion.
    assert np.corrcoef(answers[6], z["extraversion"])[0, 1] < -0.45
    alphas = simulate.scale_alphas(answers)
    for trait, alpha in alphas.items():
        assert 0.75 < alpha < 0.93, (trait, alpha)


def test_cohort_is_reproducible():
    first = simulate.simulate_cohort(12, seed=9)
    second = simulate.simulate_cohort(12, seed=9)
    other = simulate.simulate_cohort(12, seed=10)
    pd.testing.assert_frame_equal(first.features, second.features)
    pd.testing.assert_frame_equal(first.answers, second.answers)
    assert not first.traits_z.to_numpy().tolist() == other.traits_z.to_numpy().tolist()
    assert first.participants[0] == "sim-s9-0001"


def test_ceiling_unknown_when_too_few():
    # 12 participants and 15 features: an exact fit, so no ceiling.
    cohort = simulate.simulate_cohort(12, seed=4)
    assert cohort.ceilings["ceiling"].isna().all()
    assert cohort.ceilings["r_best_linear_adjusted"].isna().all()


def test_ceiling_formula():
    cohort = simulate.simulate_cohort(60, seed=4)
    row = cohort.ceilings.set_index("trait").loc["openness"]
    n, p = int(row["n"]), int(row["n_features"])
    adjusted = 1 - (1 - row["r_best_linear"] ** 2) * (n - 1) / (n - p - 1)
    assert row["r_best_linear_adjusted"] == pytest.approx(math.sqrt(max(adjusted, 0)))
    assert row["ceiling"] == pytest.approx(
        row["r_best_linear_adjusted"] * math.sqrt(row["alpha"])
    )


@pytest.fixture(scope="module")
def cohorts():
    """Three cohorts of 800 with their questionnaire scores."""
    result = []
    for seed in (21, 22, 23):
        cohort = simulate.simulate_cohort(800, seed)
        result.append((cohort, simulate.questionnaire_scores(cohort.answers)))
    return result


def test_recovery_above_half_of_ceiling(cohorts):
    # At n = 800 the ceilings of the default design are about 0.25 to 0.35 and
    # cross-validated r reaches about 0.9 of them (benchmarks/README.md). The
    # ratio of one cohort has a standard deviation of about 0.1 (r and ceiling
    # each carry sampling error near 0.035), so the mean of three cohorts has
    # about 0.06, and 0.5 lies six of those below the expected 0.85-0.9.
    ratios = {trait: [] for trait in simulate.TRAITS}
    for cohort, scores in cohorts:
        ceilings = cohort.ceilings.set_index("trait")["ceiling"]
        for result in tuning.tune(cohort.features, scores, FAST):
            ratios[result.trait].append(result.r / ceilings[result.trait])
    for trait, values in ratios.items():
        assert np.mean(values) > 0.5, (trait, values)


def test_shuffled_questionnaires_give_zero(cohorts):
    # With the scores shuffled there is no signal. Out-of-fold r then has a
    # standard deviation near 1/sqrt(800) = 0.035 per shuffle, so the mean over
    # ten shuffles has about 0.011, and 0.05 is 4.5 of those (p < 1e-5 per trait).
    cohort, scores = cohorts[0]
    means = {}
    for trait in simulate.TRAITS:
        values = []
        for seed in range(10):
            rng = np.random.default_rng(1000 + seed)
            shuffled = pd.DataFrame(
                {trait: rng.permutation(scores[trait].to_numpy())},
                index=scores.index,
            )
            (result,) = tuning.tune(cohort.features, shuffled, FAST)
            values.append(result.r)
        means[trait] = float(np.mean(values))
    for trait, mean in means.items():
        assert abs(mean) < 0.05, (trait, mean)


def test_pipeline_runs_on_simulated_workspace(tmp_path):
    root = tmp_path / "sim"
    summary = simulate.run_simulation(root, 12, seed=3)
    assert summary["imported"] is True
    ws = open_workspace(root)
    people = participants.list_participants(ws)
    assert len(people) == 12
    assert all(person["synthetic"] for person in people)

    computed = features_table(ws).pivot(
        index="participant_id", columns="feature", values="value"
    )
    with ws.connect() as con:
        generated = (
            con.execute("SELECT * FROM simulation_features")
            .df()
            .pivot(index="participant_id", columns="feature", values="value")
        )
        truth = con.execute("SELECT count(*) FROM simulation_truth").fetchone()[0]
        ceilings = con.execute("SELECT count(*) FROM simulation_ceilings").fetchone()[0]
    assert truth == 12 * 5
    assert ceilings == 5
    # The pipeline's SQL features equal the simulator's own computation.
    difference = (computed[generated.columns] - generated).abs().max().max()
    assert difference < 1e-9

    stored = questionnaires.questionnaire_table(ws)
    neuroticism = stored[
        (stored["instrument"] == "ipip50") & (stored["trait"] == "neuroticism")
    ]
    assert len(neuroticism) == 12


def test_no_import_writes_exports_only(tmp_path):
    root = tmp_path / "sim"
    summary = simulate.run_simulation(root, 10, seed=4, import_data=False)
    assert summary["imported"] is False
    export = root / "simulated" / summary["run_id"]
    assert (export / "questionnaire_ipip50.csv").is_file()
    assert (export / "sim-s4-0001" / "netflix" / "ViewingActivity.csv").is_file()
    assert list((export / "sim-s4-0001" / "spotify").glob("Streaming_History_Audio_*"))
    ws = open_workspace(root)
    assert features_table(ws).empty


def test_refuses_workspace_with_real_participants(workspace):
    participants.add(workspace, "P001")
    with pytest.raises(InputError, match="real participants"):
        simulate.run_simulation(workspace.root, 10, seed=1)
    with workspace.connect() as con:
        count = con.execute("SELECT count(*) FROM participants").fetchone()[0]
    assert count == 1
