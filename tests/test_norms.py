"""Percentiles against each instrument's own published norms."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from twinme_lab import participants
from twinme_lab.errors import InputError
from twinme_lab.traits import norms
from twinme_lab.traits.questionnaires import import_questionnaire
from twinme_lab.workspace import init_workspace


def test_ipip50_percentile_null():
    loaded = norms.load_norms("ipip50")
    assert loaded.status == norms.UNAVAILABLE
    value, reason = norms.percentile(loaded, "extraversion", 3.2)
    assert value is None
    assert reason == loaded.reason


def test_ipip50_reason_names_source():
    loaded = norms.load_norms("ipip50")
    assert "ipip.ori.org" in loaded.reason


def test_unknown_instrument_has_no_norms():
    loaded = norms.load_norms("bfi2")
    value, reason = norms.percentile(loaded, "Openness", 3.0)
    assert value is None
    assert "norms_bfi2.json" in reason


PUBLISHED = {
    "instrument": "demo",
    "status": "published",
    "citation": "Example norms used only in this test.",
    "scales": {"Extraversion": {"mean": 3.0, "sd": 0.5, "n": 100}},
}


def test_percentile_from_published_norms():
    loaded = norms.norms_from_dict("demo", PUBLISHED)
    # One SD above the mean is the 84.13th percentile of a normal distribution.
    value, reason = norms.percentile(loaded, "Extraversion", 3.5)
    assert reason is None
    assert value == pytest.approx(84.134, abs=1e-3)
    assert norms.percentile(loaded, "Extraversion", 3.0)[0] == pytest.approx(50.0)


def test_missing_scale_and_score_give_null():
    loaded = norms.norms_from_dict("demo", PUBLISHED)
    assert norms.percentile(loaded, "Openness", 3.0)[0] is None
    assert norms.percentile(loaded, "Extraversion", None) == (None, "no score")


def test_norms_of_other_instrument_rejected():
    with pytest.raises(InputError, match="never shared"):
        norms.norms_from_dict("tipi", PUBLISHED)


def test_published_norms_need_citation():
    data = dict(PUBLISHED, citation="")
    with pytest.raises(InputError, match="citation"):
        norms.norms_from_dict("demo", data)


# One standard deviation above the mean is the 84.134th percentile of a normal
# distribution, and the mean itself the 50th.
ONE_SD_ABOVE = 84.1345


def test_tipi_norms_published_figures():
    loaded = norms.load_norms("tipi")
    assert loaded.status == norms.PUBLISHED
    assert "Gosling" in loaded.citation
    assert "2003" in loaded.citation
    assert loaded.sample and loaded.checked
    published = {
        "extraversion": (4.44, 1.45),
        "agreeableness": (5.23, 1.11),
        "conscientiousness": (5.40, 1.32),
        "emotional_stability": (4.83, 1.42),
        "openness": (5.38, 1.07),
        # Stored as 8 - Emotional Stability: the mean reflects, the SD stays.
        "neuroticism": (8 - 4.83, 1.42),
    }
    for scale, (mean, sd) in published.items():
        norm = loaded.scales[scale]
        assert norm.mean == pytest.approx(mean, abs=1e-12)
        assert norm.sd == pytest.approx(sd, abs=1e-12)
    assert norms.percentile(loaded, "extraversion", 4.44)[0] == pytest.approx(50.0)
    value, reason = norms.percentile(loaded, "openness", 5.38 + 1.07)
    assert reason is None
    assert value == pytest.approx(ONE_SD_ABOVE, abs=1e-3)


def test_tipi_neuroticism_mirrors_stability():
    loaded = norms.load_norms("tipi")
    for stability in (1.0, 3.5, 4.83, 6.5):
        stable, _ = norms.percentile(loaded, "emotional_stability", stability)
        neurotic, _ = norms.percentile(loaded, "neuroticism", 8 - stability)
        assert stable + neurotic == pytest.approx(100.0, abs=1e-9)


def test_neo_120_norms_match_table_a1():
    loaded = norms.load_norms("ipip_neo_120")
    assert loaded.status == norms.PUBLISHED
    assert "Kajonius" in loaded.citation
    assert "Table A1" in loaded.citation
    # Table A1, 4-20 facet metric: mean (SD) per domain.
    table_a1 = {
        "neuroticism": (11.10, 2.66),
        "extraversion": (13.69, 2.36),
        "openness": (13.71, 2.06),
        "agreeableness": (14.87, 2.01),
        "conscientiousness": (14.95, 2.34),
    }
    assert set(loaded.scales) == set(table_a1)
    for domain, (mean, sd) in table_a1.items():
        assert loaded.scales[domain].mean * 4 == pytest.approx(mean, abs=1e-9)
        assert loaded.scales[domain].sd * 4 == pytest.approx(sd, abs=1e-9)
        assert loaded.scales[domain].n == 320128
    value, _ = norms.percentile(loaded, "extraversion", (13.69 + 2.36) / 4)
    assert value == pytest.approx(ONE_SD_ABOVE, abs=1e-3)


def test_neo_120_facets_get_null():
    loaded = norms.load_norms("ipip_neo_120")
    value, reason = norms.percentile(loaded, "n1_anxiety", 3.0)
    assert value is None
    assert reason == loaded.missing_scale_reason
    assert "facet" in reason


def answered_workspace(tmp_path, monkeypatch, answers: dict):
    """Return a workspace with participant p1 and one answer per item.

    ``answers`` maps an instrument to (number of items, the answer to each item).
    """
    monkeypatch.setenv("TWINME_CONFIG_DIR", str(tmp_path / "config"))
    ws, _ = init_workspace(tmp_path / "ws")
    participants.add(ws, "p1")
    for instrument, (items, answer) in answers.items():
        path = tmp_path / f"{instrument}.csv"
        path.write_text(
            "participant," + ",".join(str(i) for i in range(1, items + 1)) + "\n"
            "p1," + ",".join(str(answer) for _ in range(items)) + "\n"
        )
        import_questionnaire(ws, path, instrument)
    return ws


def test_export_tipi_percentiles(tmp_path, monkeypatch):
    # Every TIPI item is 6: plain-keyed items score 6, reversed ones
    # 8 - 6 = 2, so every scale is (6 + 2) / 2 = 4 and Neuroticism 8 - 4 = 4.
    ws = answered_workspace(tmp_path, monkeypatch, {"tipi": (10, 6), "ipip50": (50, 3)})
    table = norms.export_table(ws)
    tipi_rows = table[table["instrument"] == "tipi"].set_index("trait")
    expected = {
        "extraversion": (4.0 - 4.44) / 1.45,
        "agreeableness": (4.0 - 5.23) / 1.11,
        "conscientiousness": (4.0 - 5.40) / 1.32,
        "openness": (4.0 - 5.38) / 1.07,
        "neuroticism": (4.0 - 3.17) / 1.42,
    }
    assert set(tipi_rows.index) == set(expected)
    for trait, z in expected.items():
        assert tipi_rows.loc[trait, "score"] == pytest.approx(4.0)
        assert tipi_rows.loc[trait, "percentile"] == pytest.approx(
            50.0 * (1.0 + math.erf(z / math.sqrt(2.0))), abs=1e-9
        )
        assert tipi_rows.loc[trait, "percentile_note"] == (
            "Against Gosling, Rentfrow and Swann (2003) TIPI norms, student sample."
        )
    ipip_rows = table[table["instrument"] == "ipip50"]
    assert len(ipip_rows) == 5
    assert ipip_rows["percentile"].isna().all()
    assert ipip_rows["percentile_note"].str.contains("ipip.ori.org").all()


def test_report_names_norms_source(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from twinme_lab.reports import data, tables

    ws = answered_workspace(tmp_path, monkeypatch, {"tipi": (10, 6)})
    names = [
        data.display_trait(t)
        for t in (
            "openness",
            "conscientiousness",
            "extraversion",
            "agreeableness",
            "neuroticism",
        )
    ]
    no_predictions = pd.DataFrame(
        {"trait": names, "score": [None] * 5, "coverage": [0.0] * 5, "n_obs": [0] * 5}
    )
    scores, comparison = data.questionnaire_frames(ws, "p1", no_predictions)
    displayed = []
    monkeypatch.setattr(tables, "display", lambda item: displayed.append(item))
    tables.show_comparison(
        SimpleNamespace(comparison=comparison, questionnaires=scores)
    )
    text = "\n".join(getattr(item, "data", "") or "" for item in displayed)
    # Extraversion 4.0 against mean 4.44 and SD 1.45 is the 38th percentile.
    assert "<td>38</td>" in text
    assert "tipi percentiles against Gosling, S. D., Rentfrow" in text
    assert "University of Texas at Austin" in text
