"""The same data gives the same numbers: features, scores and report files."""

from __future__ import annotations

import json
import math

from conftest import REAL

from twinme_lab import participants
from twinme_lab.features import compute_features, features_table
from twinme_lab.imports import import_path
from twinme_lab.reports import run_report
from twinme_lab.traits import score, trait_table


def _fill(ws):
    participants.add(ws, "P1", "Europe/Berlin")
    import_path(ws, "spotify", REAL / "spotify_extended" / "a", "P1")
    import_path(
        ws,
        "netflix",
        REAL / "netflix_viewing_activity" / "b" / "ViewingActivity.csv",
        "P1",
    )


def _close(first: float | None, second: float | None) -> bool:
    if first is None or (isinstance(first, float) and math.isnan(first)):
        return second is None or (isinstance(second, float) and math.isnan(second))
    return abs(first - second) <= 1e-9


def test_features_and_scores_repeat_exactly(workspace):
    _fill(workspace)
    compute_features(workspace)
    score(workspace)
    features_first = features_table(workspace, "P1").set_index("feature")["value"]
    traits_first = trait_table(workspace, "P1").set_index("trait")

    compute_features(workspace)
    score(workspace)
    features_second = features_table(workspace, "P1").set_index("feature")["value"]
    traits_second = trait_table(workspace, "P1").set_index("trait")

    assert list(features_first.index) == list(features_second.index)
    for name in features_first.index:
        assert _close(features_first[name], features_second[name]), name
    for trait in traits_first.index:
        assert _close(
            traits_first.loc[trait, "score"], traits_second.loc[trait, "score"]
        ), trait
        assert (
            traits_first.loc[trait, "data_fingerprint"]
            == traits_second.loc[trait, "data_fingerprint"]
        )


def test_report_twice_gives_same_numbers_and_provenance(workspace):
    _fill(workspace)
    compute_features(workspace)
    score(workspace)
    first = json.loads(run_report(workspace, "P1").scores.read_text())
    second = json.loads(run_report(workspace, "P1").scores.read_text())

    for key in ("package_version", "mapping_version", "data_fingerprint"):
        assert first[key], key
        assert first[key] == second[key], key
    assert first["parameters"] == second["parameters"]
    assert sorted(first["traits"]) == sorted(second["traits"])
    for trait, values in first["traits"].items():
        again = second["traits"][trait]
        assert _close(values["score"], again["score"]), trait
        assert values["coverage"] == again["coverage"], trait
        assert values["n_obs"] == again["n_obs"], trait
