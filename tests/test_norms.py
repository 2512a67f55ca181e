"""Percentiles against each instrument's own published norms."""

from __future__ import annotations

import pytest

from twinme_lab.errors import InputError
from twinme_lab.traits import norms


def test_shipped_instruments_without_norms_give_null():
    for instrument in ("ipip50", "tipi", "ipip_neo_120"):
        loaded = norms.load_norms(instrument)
        assert loaded.status == norms.UNAVAILABLE
        value, reason = norms.percentile(loaded, "Extraversion", 3.2)
        assert value is None
        assert reason


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
