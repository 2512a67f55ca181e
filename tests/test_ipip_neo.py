"""IPIP-NEO-120 key: layout, reversals and hand-scored answers."""

from __future__ import annotations

import pytest

from twinme_lab import participants
from twinme_lab.errors import InputError
from twinme_lab.traits import ipip_neo_120 as neo
from twinme_lab.traits import questionnaires


def all_answers(value: int) -> dict[int, float]:
    return {item: float(value) for item in range(1, 121)}


def test_key_layout():
    key = neo.item_key()
    assert len(key) == 120
    assert len(neo.REVERSED_ITEMS) == 55
    scales = neo.scales()
    assert len(scales) == 35
    for letter, name in neo.DOMAINS.items():
        assert len(scales[name]) == 24
        for facet in range(1, 7):
            assert len(scales[neo.facet_scale(letter, facet)]) == 4


def test_key_positions():
    key = {item.number: item for item in neo.item_key()}
    # Item 1 opens N1 Anxiety, item 4 is A1 Trust, item 30 closes the first cycle
    # with C6 Cautiousness (reverse-keyed), and item 31 starts N1 again.
    assert (key[1].domain, key[1].facet, key[1].reversed) == ("N", 1, False)
    assert (key[4].domain, key[4].facet) == ("A", 1)
    assert (key[30].domain, key[30].facet, key[30].reversed) == ("C", 6, True)
    assert (key[31].domain, key[31].facet) == ("N", 1)
    assert (key[120].domain, key[120].facet, key[120].reversed) == ("C", 6, True)


def test_all_fives_hand_scored():
    scores = neo.score(all_answers(5))
    # Neuroticism items 51, 81, 96, 101, 106, 111 and 116 are reverse-keyed:
    # (17 * 5 + 7 * 1) / 24.
    assert scores["neuroticism"]["score"] == pytest.approx(92 / 24)
    # N1 Anxiety (items 1, 31, 61, 91) has no reversed item.
    assert scores["n1_anxiety"]["score"] == 5.0
    # N5 Immoderation: item 21 forward, items 51, 81 and 111 reversed.
    assert scores["n5_immoderation"]["score"] == pytest.approx((5 + 1 + 1 + 1) / 4)


def test_midpoint_scores_midpoint():
    scores = neo.score(all_answers(3))
    assert all(entry["score"] == 3.0 for entry in scores.values())


def test_agreeing_with_worry_raises_neuroticism():
    calm = all_answers(3)
    worried = dict(calm)
    worried[1] = 5.0
    low = neo.score(calm)["neuroticism"]["score"]
    high = neo.score(worried)["neuroticism"]["score"]
    assert high == pytest.approx(low + 2 / 24)


def test_missing_facet_item_leaves_facet_unscored():
    answers = all_answers(4)
    answers[1] = None
    scores = neo.score(answers)
    assert scores["n1_anxiety"]["score"] is None
    assert scores["n1_anxiety"]["n_missing"] == 1
    assert scores["neuroticism"]["score"] is not None


def test_domain_prorated_up_to_four_missing():
    answers = all_answers(5)
    for item in (1, 6, 11, 16):  # four forward-keyed N items
        answers[item] = None
    scores = neo.score(answers)
    # 20 answered N items: 13 forward at 5 and 7 reversed scoring 1.
    assert scores["neuroticism"]["score"] == pytest.approx((13 * 5 + 7) / 20)
    answers[21] = None
    assert neo.score(answers)["neuroticism"]["score"] is None


def test_out_of_range_answer_named():
    answers = all_answers(3)
    answers[17] = 6.0
    with pytest.raises(InputError, match="item 17"):
        neo.score(answers)


def test_unknown_item_number_rejected():
    answers = all_answers(3)
    answers[121] = 3.0
    with pytest.raises(InputError, match="121"):
        neo.score(answers)


def test_instrument_scores_match_key():
    spec = neo.instrument()
    assert spec.n_items == 120
    assert len(spec.scales) == 35
    answers = all_answers(5)
    scored = {s.scale: s for s in questionnaires.score_answers(spec, answers)}
    direct = neo.score(answers)
    for scale, entry in direct.items():
        assert scored[scale].score == pytest.approx(entry["score"])
    assert scored["neuroticism"].trait == "neuroticism"
    assert scored["n1_anxiety"].trait is None


def test_instrument_imports_questionnaire(workspace, tmp_path, monkeypatch):
    # setitem undoes the registration after the test.
    monkeypatch.setitem(questionnaires.INSTRUMENTS, neo.NAME, neo.instrument())
    participants.add(workspace, "P001")
    path = tmp_path / "neo.csv"
    header = ["participant", *[str(i) for i in range(1, 121)]]
    path.write_text(",".join(header) + "\n" + ",".join(["P001"] + ["5"] * 120) + "\n")
    questionnaires.import_questionnaire(workspace, path, "ipip_neo_120")
    table = questionnaires.questionnaire_table(workspace)
    row = table[table["scale"] == "neuroticism"].iloc[0]
    assert row["score"] == pytest.approx(92 / 24)
