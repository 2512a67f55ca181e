"""Percentiles of questionnaire scores against each instrument's published norms.

Each instrument has its own file, ``twinme_lab/data/norms_<instrument>.json``,
holding either ``"status": "published"`` with a citation and a mean and standard
deviation per scale (on the instrument's mean-item scale), or
``"status": "unavailable"`` with the reason. Norms of one instrument are never
applied to another's scores: a lookup names the instrument, and an instrument
without a file or without published norms gets a NULL percentile and its reason.

A percentile is ``100 * Phi((score - mean) / sd)``, which assumes the normative
scores are roughly normal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources

from ..errors import InputError

PUBLISHED = "published"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ScaleNorm:
    """Mean and standard deviation of one scale in the normative sample."""

    mean: float
    sd: float
    n: int | None = None


@dataclass(frozen=True)
class Norms:
    """Published norms of one instrument, or the reason there are none."""

    instrument: str
    status: str
    reason: str | None = None
    citation: str | None = None
    scales: dict[str, ScaleNorm] = field(default_factory=dict)


def _parse(instrument: str, data: dict, origin: str) -> Norms:
    if data.get("instrument") != instrument:
        raise InputError(
            f"{origin} describes instrument {data.get('instrument')!r}, not "
            f"{instrument!r}; norms are never shared between instruments."
        )
    status = data.get("status")
    if status == UNAVAILABLE:
        return Norms(instrument, status, reason=data.get("reason"))
    if status != PUBLISHED:
        raise InputError(
            f"{origin} has status {status!r}; use 'published' or 'unavailable'."
        )
    if not data.get("citation"):
        raise InputError(f"{origin} has published norms without a citation.")
    scales = {}
    for scale, values in data.get("scales", {}).items():
        sd = float(values["sd"])
        if not sd > 0:
            raise InputError(f"{origin}: scale {scale!r} has sd {sd}; it must be > 0.")
        scales[scale] = ScaleNorm(float(values["mean"]), sd, values.get("n"))
    return Norms(instrument, status, citation=data["citation"], scales=scales)


def load_norms(instrument: str) -> Norms:
    """Load the shipped norms of ``instrument``; a missing file means no norms."""
    name = f"norms_{instrument}.json"
    entry = resources.files("twinme_lab").joinpath("data", name)
    if not entry.is_file():
        return Norms(
            instrument,
            UNAVAILABLE,
            reason=f"No norms file {name} is shipped for instrument {instrument!r}.",
        )
    return _parse(instrument, json.loads(entry.read_text()), name)


def norms_from_dict(instrument: str, data: dict) -> Norms:
    """Parse norms given as a dict in the file format (for user-supplied norms)."""
    return _parse(instrument, data, f"norms for {instrument}")


def percentile(
    norms: Norms, scale: str, score: float | None
) -> tuple[float | None, str | None]:
    """Return (percentile, reason); percentile is None, with a reason, when unknown."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return None, "no score"
    if norms.status != PUBLISHED:
        return None, norms.reason
    norm = norms.scales.get(scale)
    if norm is None:
        return None, (
            f"The published {norms.instrument} norms have no scale {scale!r}."
        )
    z = (score - norm.mean) / norm.sd
    return 50.0 * (1.0 + math.erf(z / math.sqrt(2.0))), None
