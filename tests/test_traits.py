"""Trait scoring: mappings, standardization, coverage, history and fingerprints."""

from __future__ import annotations

import json
import math

import pytest
from test_features import play, view

from twinme_lab import participants
from twinme_lab.cli import common, main
from twinme_lab.errors import InputError, NotFoundError
from twinme_lab.features import compute_features, definitions
from twinme_lab.traits import (
    TRAITS,
    list_mappings,
    load_mapping,
    score,
    trait_history,
    trait_table,
)

ENTROPY = 1.5 * math.log(2) / math.log(3)


@pytest.fixture(autouse=True)
def reset_cli_state():
    common._state.update({"json": False, "exit_code": 0})
    yield
    common._state.update({"json": False, "exit_code": 0})


def entry(feature, weight, status="published"):
    item = {"feature": feature, "weight": weight, "status": status}
    if status == "published":
        item["source"] = "test_source"
    return item


def sample_mapping(version="test-1", cohort_min=30) -> dict:
    return {
        "version": version,
        "standardization": {"cohort_min_participants": cohort_min},
        "sources": {
            "test_source": {"authors": "Test", "year": 2000, "finding": "for tests"}
        },
        "reference_values": {
            "features": {
                "listening_artist_entropy": {"mean": 0.5, "sd": 0.25},
                "viewing_binge_sessions": {"mean": 1.0, "sd": 2.0},
                "listening_night_share": {"mean": 0.2, "sd": 0.1},
                "listening_hours": {"mean": 1.0, "sd": 1.0},
                "viewing_hours": {"mean": 10.0, "sd": 5.0},
            }
        },
        "traits": {
            "openness": [
                entry("listening_artist_entropy", 2.0),
                entry("viewing_binge_sessions", -1.0),
            ],
            "conscientiousness": [entry("listening_night_share", -1.0)],
            "extraversion": [entry("listening_skip_rate", 0.0, "exploratory")],
            "agreeableness": [entry("listening_hours", 1.0, "tuned")],
            "neuroticism": [entry("viewing_hours", 1.0, "tuned")],
        },
    }


def install(ws, mapping) -> None:
    folder = ws.root / "mappings"
    folder.mkdir(exist_ok=True)
    path = folder / f"mapping_{mapping['version']}.json"
    path.write_text(json.dumps(mapping))


def add_listener(ws, pid, zone=None, hours_plays=0):
    """Enrol a participant with eight plays spread as A x4, B x2, C x2."""
    participants.add(ws, pid, zone)
    with ws.connect() as con:
        for artist, count in (("A", 4), ("B", 2), ("C", 2)):
            for i in range(count):
                play(con, pid, f"2026-01-0{i + 1}T12:00:00Z", artist=artist)
        for i in range(hours_plays):
            play(con, pid, f"2026-01-2{i}T12:00:00Z", ms=3600000, artist="A")


def add_binges(ws, pid, sessions):
    with ws.connect() as con:
        for day in range(1, sessions + 1):
            for episode in (1, 2, 3):
                view(
                    con,
                    pid,
                    f"S: E{day}.{episode}",
                    f"2026-02-{day:02d}T1{episode}:00:00Z",
                    None,
                    1800,
                    "S",
                )


def by_trait(ws, pid) -> dict:
    table = trait_table(ws, pid)
    return {row.trait: row for row in table.itertuples()}


def test_default_mapping_is_sourced_and_complete():
    mapping = load_mapping()
    assert mapping["version"] == "default-1"
    declared = set(definitions())
    references = mapping["reference_values"]["features"]
    unavailable = set(mapping["reference_values"]["unavailable"]["features"])
    assert not unavailable & set(references)
    for trait in TRAITS:
        for item in mapping["traits"][trait]:
            assert item["feature"] in declared, item["feature"]
            assert item["feature"] in set(references) | unavailable, item["feature"]
            if item["status"] == "exploratory":
                assert item["weight"] == 0, item["feature"]
            if item["weight"] != 0:
                source = mapping["sources"][item["source"]]
                assert source["authors"], item["source"]
                assert source["year"], item["source"]
                assert source["finding"], item["source"]


def test_no_features_gives_null_traits(workspace):
    participants.add(workspace, "empty")
    compute_features(workspace)
    score(workspace)
    table = trait_table(workspace, "empty")
    assert sorted(table["trait"]) == sorted(TRAITS)
    assert table["score"].isna().all()
    assert (table["coverage"] == 0).all()
    assert (table["n_obs"] == 0).all()
    assert set(table["reference"]) == {"none"}
    with workspace.connect() as con:
        stored_nulls = con.execute(
            "SELECT count(*) FROM trait_scores WHERE score IS NULL AND coverage = 0"
        ).fetchone()[0]
    assert stored_nulls == len(TRAITS)


def test_coverage_is_share_of_weight(workspace):
    install(workspace, sample_mapping())
    add_listener(workspace, "listener")
    compute_features(workspace)
    summary = score(workspace, "test-1")
    traits = by_trait(workspace, "listener")
    openness = traits["openness"]
    # Entropy (weight 2) has data, binge sessions (weight 1) do not.
    assert openness.coverage == pytest.approx(2 / 3)
    assert openness.score == pytest.approx((ENTROPY - 0.5) / 0.25)
    assert openness.n_obs == 8
    assert openness.reference == "shipped"
    # Night share needs a time zone, and extraversion has only zero weights.
    for trait in ("conscientiousness", "extraversion", "neuroticism"):
        assert math.isnan(traits[trait].score), trait
        assert traits[trait].coverage == 0, trait
    assert summary["traits"]["openness"] == {"scored": 1, "null": 0}
    details = json.loads(openness.details)
    assert [d["feature"] for d in details] == [
        "listening_artist_entropy",
        "viewing_binge_sessions",
    ]
    assert details[1]["z"] is None


def test_weighted_mean_of_signed_z(workspace):
    install(workspace, sample_mapping())
    add_listener(workspace, "both")
    add_binges(workspace, "both", 4)
    compute_features(workspace)
    score(workspace, "test-1")
    openness = by_trait(workspace, "both")["openness"]
    z_entropy = (ENTROPY - 0.5) / 0.25
    z_binge = (4 - 1.0) / 2.0
    assert openness.coverage == pytest.approx(1.0)
    assert openness.score == pytest.approx((2 * z_entropy - z_binge) / 3)
    # Eight plays plus twelve viewings.
    assert openness.n_obs == 20


def test_cohort_standardization_above_threshold(workspace):
    install(workspace, sample_mapping(cohort_min=3))
    for pid, extra_hours in (("a", 0), ("b", 1), ("c", 2)):
        add_listener(workspace, pid, hours_plays=extra_hours)
    participants.add(workspace, "viewer")
    add_binges(workspace, "viewer", 2)
    compute_features(workspace)
    summary = score(workspace, "test-1")
    assert summary["reference"]["listening_hours"] == "cohort"
    assert summary["reference"]["viewing_binge_sessions"] == "shipped"
    # Hours are 8/60, 1 + 8/60 and 2 + 8/60: cohort mean is the middle, SD 1.
    for pid, expected in (("a", -1.0), ("b", 0.0), ("c", 1.0)):
        agreeableness = by_trait(workspace, pid)["agreeableness"]
        assert agreeableness.score == pytest.approx(expected), pid
        assert agreeableness.reference == "cohort", pid
    assert by_trait(workspace, "a")["openness"].reference == "cohort"
    assert by_trait(workspace, "viewer")["openness"].reference == "shipped"


def test_mixed_reference_recorded(workspace):
    install(workspace, sample_mapping(cohort_min=3))
    for pid in ("a", "b", "c"):
        add_listener(workspace, pid)
    add_binges(workspace, "a", 1)
    compute_features(workspace)
    score(workspace, "test-1")
    # Entropy has three participants (but SD 0, so shipped), binge has one.
    assert by_trait(workspace, "a")["openness"].reference == "shipped"
    with workspace.connect() as con:
        con.execute(
            "UPDATE features SET value = value + 0.01 WHERE participant_id = 'b' "
            "AND feature = 'listening_artist_entropy'"
        )
    score(workspace, "test-1")
    assert by_trait(workspace, "a")["openness"].reference == "mixed"


def test_history_accumulates(workspace):
    install(workspace, sample_mapping())
    add_listener(workspace, "p1")
    compute_features(workspace)
    first = score(workspace, "test-1")
    second = score(workspace, "test-1")
    assert second["run_id"] > first["run_id"]
    history = trait_history(workspace, "p1")
    assert len(history) == 2 * len(TRAITS)
    assert sorted(set(history["run_id"])) == [first["run_id"], second["run_id"]]
    assert len(trait_table(workspace, "p1")) == len(TRAITS)


def fingerprints(ws, pid) -> list[str]:
    history = trait_history(ws, pid)
    return list(history.groupby("run_id")["data_fingerprint"].first())


def test_fingerprint_changes_only_with_data(workspace):
    install(workspace, sample_mapping())
    install(workspace, sample_mapping("test-2"))
    add_listener(workspace, "p1", "Europe/Berlin")
    compute_features(workspace)
    score(workspace, "test-1")
    compute_features(workspace)
    score(workspace, "test-1")
    with workspace.connect() as con:
        play(con, "p1", "2026-03-01T12:00:00Z", artist="D")
    compute_features(workspace)
    score(workspace, "test-1")
    score(workspace, "test-2")
    runs = fingerprints(workspace, "p1")
    assert len(runs) == 4
    assert runs[0] == runs[1]
    assert runs[2] != runs[1]
    assert runs[3] != runs[2]
    assert all(len(f) == 64 for f in runs)


def test_fingerprint_covers_reference(workspace):
    install(workspace, sample_mapping())
    add_listener(workspace, "p1")
    compute_features(workspace)
    score(workspace, "test-1")
    changed = sample_mapping()
    changed["reference_values"]["features"]["listening_hours"]["sd"] = 2.0
    install(workspace, changed)
    score(workspace, "test-1")
    runs = fingerprints(workspace, "p1")
    assert runs[0] != runs[1]


def test_list_and_load_workspace_mapping(workspace):
    install(workspace, sample_mapping())
    table = list_mappings(workspace)
    assert {"default-1", "test-1"} <= set(table["version"])
    assert load_mapping("test-1", workspace)["file"].endswith("mapping_test-1.json")
    with pytest.raises(NotFoundError, match="test-1"):
        load_mapping("missing-9", workspace)


def test_exploratory_weight_must_be_zero(workspace):
    bad = sample_mapping("bad-1")
    bad["traits"]["extraversion"] = [entry("listening_skip_rate", 0.5, "exploratory")]
    install(workspace, bad)
    with pytest.raises(InputError, match="exploratory weight"):
        load_mapping("bad-1", workspace)


def test_published_weight_needs_source(workspace):
    bad = sample_mapping("bad-2")
    bad["traits"]["openness"][0]["source"] = "nowhere"
    install(workspace, bad)
    with pytest.raises(InputError, match="needs a 'source'"):
        load_mapping("bad-2", workspace)


def test_forget_removes_history(workspace):
    add_listener(workspace, "gone")
    compute_features(workspace)
    score(workspace)
    participants.forget(workspace, "gone")
    with workspace.connect() as con:
        left = con.execute(
            "SELECT count(*) FROM trait_score_history WHERE participant_id = 'gone'"
        ).fetchone()[0]
    assert left == 0


def test_cli_features_and_score_json(workspace, capsys):
    add_listener(workspace, "p1", "Europe/Berlin")
    root = str(workspace.root)
    assert main(["features", "--participant", "p1", "--workspace", root, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["participants"] == ["p1"]
    assert out["features"]["listening_artist_entropy"] == {"value": 1, "null": 0}
    assert main(["score", "--mapping", "default-1", "--workspace", root, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mapping_version"] == "default-1"
    assert out["participants"] == 1
    assert main(["score", "--mapping", "nope", "--workspace", root]) == 1
    assert "No trait mapping" in capsys.readouterr().err


def test_score_without_participants(workspace):
    summary = score(workspace)
    assert summary["participants"] == 0
    assert trait_table(workspace).empty
