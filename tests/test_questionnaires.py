"""Questionnaire keys, import checks and reliability, against hand-scored answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twinme_lab import participants
from twinme_lab.cli import common, main
from twinme_lab.errors import InputError, UsageError
from twinme_lab.traits import (
    import_questionnaire,
    questionnaire_table,
    reliability,
    score_answers,
)
from twinme_lab.traits.questionnaires import cronbach_alpha, get_instrument

IPIP = get_instrument("ipip50")
TIPI = get_instrument("tipi")

# Items of each IPIP-50 scale in the published order, with minus-keyed items
# marked by a negative number, written out by hand from the key.
IPIP_HAND_KEY = {
    "extraversion": [1, -6, 11, -16, 21, -26, 31, -36, 41, -46],
    "agreeableness": [-2, 7, -12, 17, -22, 27, -32, 37, 42, 47],
    "conscientiousness": [3, -8, 13, -18, 23, -28, 33, -38, 43, 48],
    "emotional_stability": [-4, 9, -14, 19, -24, -29, -34, -39, -44, -49],
    "intellect_imagination": [5, -10, 15, -20, 25, -30, 35, 40, 45, 50],
}


@pytest.fixture(autouse=True)
def reset_cli_state():
    common._state.update({"json": False, "exit_code": 0})
    yield
    common._state.update({"json": False, "exit_code": 0})


def write_csv(path, rows, items=50, prefix=""):
    """Write a questionnaire CSV; rows are (participant, {item: answer})."""
    header = ["participant"] + [f"{prefix}{i}" for i in range(1, items + 1)]
    lines = [",".join(header)]
    for pid, answers in rows:
        cells = [pid] + [str(answers.get(i, "")) for i in range(1, items + 1)]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def scores_of(ws, pid, instrument) -> dict:
    table = questionnaire_table(ws, pid)
    table = table[table["instrument"] == instrument]
    return {
        row.scale: (None if np.isnan(row.score) else row.score)
        for row in table.itertuples()
    }


def test_ipip_key_matches_hand_key():
    for scale in IPIP.scales:
        got = [item * key for item, key in scale.items]
        assert got == IPIP_HAND_KEY[scale.name], scale.name


def test_ipip_item4_agreement_raises_neuroticism():
    neutral = {i: 3 for i in range(1, 51)}
    stressed = {**neutral, 4: 5}
    base = {s.scale: s.score for s in score_answers(IPIP, neutral)}
    raised = {s.scale: s.score for s in score_answers(IPIP, stressed)}
    assert base["neuroticism"] == pytest.approx(3.0)
    # Item 4 is minus-keyed for Emotional Stability: 6 - 5 = 1, so ES = 28 / 10.
    assert raised["emotional_stability"] == pytest.approx(2.8)
    assert raised["neuroticism"] == pytest.approx(3.2)
    assert raised["extraversion"] == pytest.approx(3.0)


def test_ipip_extraversion_hand_scored():
    answers = {i: 3 for i in range(1, 51)}
    answers.update({1: 5, 6: 1, 11: 4, 16: 2, 21: 5, 26: 1, 31: 3, 36: 3, 41: 4, 46: 2})
    scores = {s.scale: s.score for s in score_answers(IPIP, answers)}
    # Keyed: 5, 5, 4, 4, 5, 5, 3, 3, 4, 4 = 42.
    assert scores["extraversion"] == pytest.approx(4.2)


def test_ipip_missing_items_rule():
    answers = {i: 4 for i in range(1, 51)}
    two_missing = {i: a for i, a in answers.items() if i not in (3, 8)}
    three_missing = {i: a for i, a in two_missing.items() if i != 13}
    prorated = {s.scale: s for s in score_answers(IPIP, two_missing)}
    dropped = {s.scale: s for s in score_answers(IPIP, three_missing)}
    # Left: 13, 23, 33, 43, 48 at 4 and 18, 28, 38 reversed to 2: 26 / 8.
    assert prorated["conscientiousness"].score == pytest.approx(3.25)
    assert prorated["conscientiousness"].n_missing == 2
    assert dropped["conscientiousness"].score is None
    assert dropped["conscientiousness"].n_missing == 3
    assert dropped["extraversion"].score == pytest.approx(3.0)


def test_tipi_reversal_and_missing_item():
    answers = {1: 6, 6: 2, 2: 7, 7: 3, 3: 5, 8: 5, 4: 2, 9: 5, 10: 4}
    scores = {s.scale: s.score for s in score_answers(TIPI, answers)}
    assert scores["extraversion"] == pytest.approx((6 + (8 - 2)) / 2)
    assert scores["agreeableness"] == pytest.approx(((8 - 7) + 3) / 2)
    assert scores["conscientiousness"] == pytest.approx((5 + (8 - 5)) / 2)
    assert scores["emotional_stability"] == pytest.approx(((8 - 2) + 5) / 2)
    assert scores["neuroticism"] == pytest.approx(8 - 5.5)
    # Item 5 is missing, so Openness (items 5 and 10R) gets no score.
    assert scores["openness"] is None


def test_import_stores_answers_and_scores(workspace, tmp_path):
    participants.add(workspace, "p1")
    participants.add(workspace, "p2")
    answers = {i: 3 for i in range(1, 51)}
    path = write_csv(
        tmp_path / "ipip.csv",
        [("p1", {**answers, 4: 5}), ("p2", answers)],
        prefix="item",
    )
    summary = import_questionnaire(workspace, path, "ipip50")
    assert summary["participants"] == 2
    assert summary["answers"] == 100
    assert scores_of(workspace, "p1", "ipip50")["neuroticism"] == pytest.approx(3.2)
    assert scores_of(workspace, "p2", "ipip50")["neuroticism"] == pytest.approx(3.0)
    table = questionnaire_table(workspace, "p1")
    traits = dict(zip(table["scale"], table["trait"], strict=True))
    assert traits["intellect_imagination"] == "openness"
    assert traits["neuroticism"] == "neuroticism"
    with workspace.connect() as con:
        stored = con.execute(
            "SELECT answer FROM questionnaire_answers WHERE participant_id = 'p1' "
            "AND item = 4"
        ).fetchone()[0]
    assert stored == 5


def test_import_with_bom_and_empty_cells(workspace, tmp_path):
    participants.add(workspace, "p1")
    answers = {i: 2 for i in range(1, 11) if i != 5}
    path = write_csv(tmp_path / "tipi.csv", [("p1", answers)], items=10)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    summary = import_questionnaire(workspace, path, "tipi")
    assert summary["missing_answers"] == 1
    scores = scores_of(workspace, "p1", "tipi")
    assert scores["openness"] is None
    assert scores["extraversion"] == pytest.approx((2 + 6) / 2)


def test_unanswered_row_stores_null_scores(workspace, tmp_path):
    participants.add(workspace, "blank")
    path = write_csv(tmp_path / "blank.csv", [("blank", {})], items=10)
    summary = import_questionnaire(workspace, path, "tipi")
    assert summary["answers"] == 0
    assert summary["missing_answers"] == 10
    scores = scores_of(workspace, "blank", "tipi")
    assert len(scores) == 6
    assert all(value is None for value in scores.values())
    with workspace.connect() as con:
        stored_nulls = con.execute(
            "SELECT count(*) FROM questionnaire_scores WHERE score IS NULL"
        ).fetchone()[0]
    assert stored_nulls == 6


def test_answers_link_to_their_import(workspace, tmp_path):
    participants.add(workspace, "p1")
    participants.add(workspace, "p2")
    rows = [("p1", {i: 4 for i in range(1, 11)}), ("p2", {1: 2})]
    path = write_csv(tmp_path / "link.csv", rows, items=10)
    import_questionnaire(workspace, path, "tipi")
    import_questionnaire(workspace, path, "tipi")
    with workspace.connect() as con:
        links = con.execute(
            "SELECT a.participant_id, count(*), any_value(i.file_name), "
            "any_value(i.participant_id) FROM questionnaire_answers a "
            "JOIN imports i USING (import_id) GROUP BY a.participant_id "
            "ORDER BY a.participant_id"
        ).fetchall()
        imports = con.execute(
            "SELECT count(*) FROM imports WHERE platform = 'questionnaire'"
        ).fetchone()[0]
    assert links == [("p1", 10, "link.csv", "p1"), ("p2", 1, "link.csv", "p2")]
    assert imports == 4


def test_out_of_range_rejected_naming_cell(workspace, tmp_path):
    participants.add(workspace, "p1")
    participants.add(workspace, "p2")
    good = write_csv(
        tmp_path / "good.csv", [("p1", {i: 4 for i in range(1, 11)})], items=10
    )
    import_questionnaire(workspace, good, "tipi")
    before = questionnaire_table(workspace)

    bad_answers = {i: 4 for i in range(1, 11)}
    bad = write_csv(
        tmp_path / "bad.csv",
        [("p1", {i: 1 for i in range(1, 11)}), ("p2", {**bad_answers, 7: 8})],
        items=10,
    )
    with pytest.raises(InputError) as caught:
        import_questionnaire(workspace, bad, "tipi")
    message = str(caught.value)
    assert "bad.csv" in message
    assert "line 3" in message
    assert "participant p2" in message
    assert "column '7'" in message
    assert "'8' is out of range 1-7" in message

    after = questionnaire_table(workspace)
    assert after["score"].tolist() == before["score"].tolist()
    with workspace.connect() as con:
        count = con.execute("SELECT count(*) FROM questionnaire_answers").fetchone()[0]
    assert count == 10


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("x", "'x' is not a number"),
        ("2.5", "'2.5' is not a whole number"),
        ("0", "'0' is out of range 1-5"),
    ],
)
def test_invalid_cells_rejected(workspace, tmp_path, cell, expected):
    participants.add(workspace, "p1")
    path = tmp_path / "ipip.csv"
    write_csv(path, [("p1", {i: 3 for i in range(1, 51)})])
    text = path.read_text().replace(",3,3\n", f",3,{cell}\n")
    path.write_text(text)
    with pytest.raises(InputError, match=expected) as caught:
        import_questionnaire(workspace, path, "ipip50")
    assert "column '50'" in str(caught.value)
    assert questionnaire_table(workspace).empty


def test_unknown_participant_rejected(workspace, tmp_path):
    participants.add(workspace, "p1")
    path = write_csv(tmp_path / "t.csv", [("p1", {1: 4}), ("nobody", {1: 4})], items=10)
    with pytest.raises(InputError, match="nobody"):
        import_questionnaire(workspace, path, "tipi")
    assert questionnaire_table(workspace).empty


def test_wrong_columns_rejected(workspace, tmp_path):
    participants.add(workspace, "p1")
    short = write_csv(tmp_path / "short.csv", [("p1", {1: 4})], items=9)
    with pytest.raises(InputError, match="lacks columns for tipi items 10"):
        import_questionnaire(workspace, short, "tipi")
    extra = tmp_path / "extra.csv"
    write_csv(extra, [("p1", {1: 4})], items=10)
    extra.write_text(
        extra.read_text()
        .replace("participant,", "participant,age,")
        .replace("p1,", "p1,30,")
    )
    with pytest.raises(InputError, match="'age'"):
        import_questionnaire(workspace, extra, "tipi")
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("id,1,2\np1,3,3\n")
    with pytest.raises(InputError, match="no 'participant' column"):
        import_questionnaire(workspace, unnamed, "tipi")
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("participant;1;2\np1;3;3\n")
    with pytest.raises(InputError, match="separates its columns with ';'"):
        import_questionnaire(workspace, semicolons, "tipi")


def test_duplicate_participant_rejected(workspace, tmp_path):
    participants.add(workspace, "p1")
    path = write_csv(tmp_path / "d.csv", [("p1", {1: 4}), ("p1", {1: 5})], items=10)
    with pytest.raises(InputError, match="line 3: participant p1 appears a second"):
        import_questionnaire(workspace, path, "tipi")


def test_unknown_instrument_rejected(workspace, tmp_path):
    with pytest.raises(UsageError, match="ipip50"):
        import_questionnaire(workspace, tmp_path / "x.csv", "bfi")


def test_reimport_replaces_answers(workspace, tmp_path):
    participants.add(workspace, "p1")
    first = write_csv(
        tmp_path / "a.csv", [("p1", {i: 4 for i in range(1, 11)})], items=10
    )
    import_questionnaire(workspace, first, "tipi")
    second = write_csv(
        tmp_path / "b.csv", [("p1", {i: 2 for i in range(1, 10)})], items=10
    )
    import_questionnaire(workspace, second, "tipi")
    scores = scores_of(workspace, "p1", "tipi")
    assert scores["extraversion"] == pytest.approx((2 + 6) / 2)
    assert scores["openness"] is None
    with workspace.connect() as con:
        count = con.execute("SELECT count(*) FROM questionnaire_answers").fetchone()[0]
    assert count == 9


def test_cronbach_alpha_perfectly_consistent():
    # Items all equal within each person: item variances 1 each, total variance
    # 100, so alpha = 10/9 * (1 - 10/100) = 1.
    matrix = np.repeat(np.array([[1.0], [2.0], [3.0]]), 10, axis=1)
    assert cronbach_alpha(matrix) == pytest.approx(1.0)


def numpy_alpha(keyed: np.ndarray) -> float:
    k = keyed.shape[1]
    covariance = np.cov(keyed, rowvar=False)
    return k / (k - 1) * (1 - np.trace(covariance) / covariance.sum())


def test_ipip_reliability_matches_numpy(workspace, tmp_path):
    rng = np.random.default_rng(7)
    rows = []
    for n in range(12):
        pid = f"p{n:02d}"
        participants.add(workspace, pid)
        rows.append((pid, {i: int(rng.integers(1, 6)) for i in range(1, 51)}))
    # p00 skips an Extraversion item, so it drops out of that scale's alpha only.
    del rows[0][1][6]
    import_questionnaire(workspace, write_csv(tmp_path / "r.csv", rows), "ipip50")
    table = reliability(workspace, "ipip50").set_index("scale")
    for scale, signed in IPIP_HAND_KEY.items():
        members = rows[1:] if scale == "extraversion" else rows
        keyed = np.array(
            [[a[i] if i > 0 else 6 - a[-i] for i in signed] for _, a in members],
            dtype=float,
        )
        assert table.at[scale, "value"] == pytest.approx(numpy_alpha(keyed)), scale
        assert table.at[scale, "n_participants"] == len(members)
        assert table.at[scale, "statistic"] == "cronbach_alpha"


def test_tipi_reliability_is_item_correlation(workspace, tmp_path):
    answers = [(1, 7), (2, 5), (4, 4), (6, 2), (7, 3)]
    rows = []
    for n, (first, sixth) in enumerate(answers):
        pid = f"t{n}"
        participants.add(workspace, pid)
        rows.append((pid, {1: first, 6: sixth, 2: 4, 7: 4}))
    path = write_csv(tmp_path / "t.csv", rows, items=10)
    import_questionnaire(workspace, path, "tipi")
    table = reliability(workspace, "tipi").set_index("scale")
    reversed_sixth = [8 - s for _, s in answers]
    expected = np.corrcoef([f for f, _ in answers], reversed_sixth)[0, 1]
    assert table.at["extraversion", "value"] == pytest.approx(expected)
    assert table.at["extraversion", "statistic"] == "inter_item_r"
    # Agreeableness items do not vary, so the correlation is undefined.
    assert np.isnan(table.at["agreeableness", "value"])
    assert table.at["openness", "n_participants"] == 0


def test_cli_import_json_and_exit_codes(workspace, tmp_path, capsys):
    participants.add(workspace, "p1")
    good = write_csv(
        tmp_path / "g.csv", [("p1", {i: 4 for i in range(1, 11)})], items=10
    )
    code = main(
        [
            "questionnaire",
            "import",
            str(good),
            "--instrument",
            "tipi",
            "--workspace",
            str(workspace.root),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["participants"] == 1
    assert out["scales"]["openness"] == {"scored": 1, "null": 0}

    bad = write_csv(tmp_path / "b.csv", [("p1", {1: 9})], items=10)
    code = main(
        [
            "questionnaire",
            "import",
            str(bad),
            "--instrument",
            "tipi",
            "--workspace",
            str(workspace.root),
        ]
    )
    assert code == 1
    assert "out of range 1-7" in capsys.readouterr().err

    code = main(
        [
            "questionnaire",
            "reliability",
            "--instrument",
            "tipi",
            "--workspace",
            str(workspace.root),
            "--json",
        ]
    )
    assert code == 0
    assert len(json.loads(capsys.readouterr().out)["reliability"]) == 5


def test_ipip_neo_120_imports_domains(workspace, tmp_path):
    participants.add(workspace, "neo")
    path = write_csv(
        tmp_path / "neo.csv", [("neo", {i: 3 for i in range(1, 121)})], items=120
    )
    summary = import_questionnaire(workspace, path, "ipip_neo_120")
    assert summary["answers"] == 120
    table = questionnaire_table(workspace, "neo")
    domains = table[table["trait"].notna()]
    assert sorted(domains["trait"]) == sorted(
        [
            "openness",
            "conscientiousness",
            "extraversion",
            "agreeableness",
            "neuroticism",
        ]
    )
    # The midpoint answer reverses to itself, so every scale scores 3.
    assert (table["score"] == 3.0).all()
    assert len(table) == 35
