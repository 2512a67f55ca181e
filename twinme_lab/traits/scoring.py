"""Trait scoring: standardize features, combine them by the mapping, keep history.

Each feature a mapping weights is standardized against the cohort (mean and
sample SD over every enrolled participant with a value) when at least
``cohort_min_participants`` participants have a value and the values vary.
Otherwise it is standardized against the mapping's reference values. A feature
with neither has no usable z-score.

A trait's score is the weighted mean of the available z-scores,
``sum(w * z) / sum(|w|)`` over the features with data, so a weight's sign sets
the direction. NOTE: the result is in z units, but averaging several z-scores
narrows the spread, so its SD across people is usually below 1. Coverage is the
share of the trait's total absolute weight that had data. A trait with no usable
feature (or whose weights are all 0) is stored as NULL with coverage 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime

import pandas as pd

from .. import participants
from ..errors import UsageError
from ..store import transaction
from ..workspace import Workspace
from .mapping import TRAITS, load_mapping

log = logging.getLogger(__name__)


def _iso(value) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").isoformat()


def _number(value) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def standardization(features: pd.DataFrame, mapping: dict) -> dict[str, dict]:
    """Return per mapped feature the reference used: kind, mean, sd and n.

    ``kind`` is ``cohort``, ``shipped`` or ``none`` (no reference available).
    """
    minimum = mapping["standardization"]["cohort_min_participants"]
    shipped = mapping.get("reference_values", {}).get("features", {})
    mapped = sorted({e["feature"] for es in mapping["traits"].values() for e in es})
    result: dict[str, dict] = {}
    for feature in mapped:
        rows = features[(features["feature"] == feature) & features["value"].notna()]
        values = [float(v) for v in rows.sort_values("participant_id")["value"]]
        n = len(values)
        # Equal values give a rounding-error SD rather than 0, so variation is
        # tested on the values themselves.
        if n >= minimum and min(values) < max(values):
            mean = math.fsum(values) / n
            sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
            if sd > 0:
                result[feature] = {"kind": "cohort", "mean": mean, "sd": sd, "n": n}
                continue
        if feature in shipped:
            ref = shipped[feature]
            result[feature] = {
                "kind": "shipped",
                "mean": float(ref["mean"]),
                "sd": float(ref["sd"]),
                "n": n,
            }
        else:
            result[feature] = {"kind": "none", "mean": None, "sd": None, "n": n}
    return result


def fingerprint(
    feature_rows: list[dict], reference: dict[str, dict], mapping: dict
) -> str:
    """Return the sha256 of a participant's feature rows, reference and mapping.

    Feature rows are taken in feature order with their value, observations and
    window; computation times are left out, so recomputing unchanged data keeps
    the fingerprint.
    """
    payload = {
        "mapping_version": mapping["version"],
        "mapping_digest": mapping["digest"],
        "features": [
            [r["feature"], r["value"], r["n_obs"], r["window_start"], r["window_end"]]
            for r in sorted(feature_rows, key=lambda r: r["feature"])
        ],
        "reference": {
            name: [ref["kind"], ref["mean"], ref["sd"]]
            for name, ref in sorted(reference.items())
        },
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def score_trait(
    entries: list[dict], values: dict[str, dict], reference: dict[str, dict]
) -> dict:
    """Combine one trait's weighted features for one participant.

    Returns score (None without evidence), coverage, n_obs, the reference kind
    used (cohort, shipped, mixed, or none) and per-feature details.
    """
    weighted = [e for e in entries if e["weight"] != 0]
    total = math.fsum(abs(e["weight"]) for e in weighted)
    details = []
    used_weight = []
    terms = []
    n_obs = 0
    kinds = set()
    for entry in weighted:
        feature = entry["feature"]
        row = values.get(feature)
        ref = reference[feature]
        value = None if row is None else row["value"]
        z = None
        if value is not None and ref["kind"] != "none":
            z = (value - ref["mean"]) / ref["sd"]
            used_weight.append(abs(entry["weight"]))
            terms.append(entry["weight"] * z)
            n_obs += row["n_obs"]
            kinds.add(ref["kind"])
        details.append(
            {
                "feature": feature,
                "weight": entry["weight"],
                "value": value,
                "z": z,
                "reference": ref["kind"],
                "n_obs": 0 if row is None else row["n_obs"],
            }
        )
    if not terms or total == 0:
        return {
            "score": None,
            "coverage": 0.0,
            "n_obs": 0,
            "reference": "none",
            "details": details,
        }
    used = math.fsum(used_weight)
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    return {
        "score": math.fsum(terms) / used,
        "coverage": used / total,
        "n_obs": n_obs,
        "reference": kind,
        "details": details,
    }


def _feature_frame(con) -> pd.DataFrame:
    return con.execute(
        "SELECT participant_id, feature, value, n_obs, window_start, window_end "
        "FROM features ORDER BY participant_id, feature"
    ).df()


def score(
    workspace: Workspace,
    mapping_version: str | None = None,
    participant_ids: Iterable[str] | None = None,
) -> dict:
    """Score every trait for the given participants (default: all enrolled).

    Replaces their rows in ``trait_scores`` and appends one run to
    ``trait_score_history``. Returns a summary: run id, mapping version, per trait
    how many participants got a score, and the reference used per feature.
    """
    if isinstance(participant_ids, str):
        raise UsageError("participant_ids must be a list of ids, not one string.")
    mapping = load_mapping(mapping_version, workspace)
    with workspace.connect() as con:
        if participant_ids is None:
            chosen = [
                pid
                for (pid,) in con.execute(
                    "SELECT participant_id FROM participants ORDER BY participant_id"
                ).fetchall()
            ]
        else:
            chosen = sorted(set(participant_ids))
            for pid in chosen:
                participants.require(con, pid)
        features = _feature_frame(con)

    reference = standardization(features, mapping)
    scored_at = datetime.now(UTC)
    empty = features.iloc[0:0]
    by_participant = dict(tuple(features.groupby("participant_id", sort=True)))
    rows = []
    for pid in chosen:
        own = by_participant.get(pid, empty)
        feature_rows = [
            {
                "feature": r.feature,
                "value": _number(r.value),
                "n_obs": int(r.n_obs),
                "window_start": _iso(r.window_start),
                "window_end": _iso(r.window_end),
            }
            for r in own.itertuples(index=False)
        ]
        values = {r["feature"]: r for r in feature_rows if r["value"] is not None}
        digest = fingerprint(feature_rows, reference, mapping)
        for trait in TRAITS:
            result = score_trait(mapping["traits"][trait], values, reference)
            rows.append(
                {
                    "participant_id": pid,
                    "trait": trait,
                    "score": result["score"],
                    "coverage": result["coverage"],
                    "n_obs": result["n_obs"],
                    "mapping_version": mapping["version"],
                    "reference": result["reference"],
                    "data_fingerprint": digest,
                    "details": json.dumps(result["details"], sort_keys=True),
                    "scored_at": scored_at,
                }
            )
    frame = pd.DataFrame(
        rows,
        columns=[
            "participant_id",
            "trait",
            "score",
            "coverage",
            "n_obs",
            "mapping_version",
            "reference",
            "data_fingerprint",
            "details",
            "scored_at",
        ],
    )
    frame["score"] = frame["score"].astype("float64")
    frame["n_obs"] = frame["n_obs"].astype("int64")

    with workspace.connect() as con:
        con.register("scored_frame", frame)
        with transaction(con):
            run_id = con.execute("SELECT nextval('trait_run_seq')").fetchone()[0]
            con.execute(
                "DELETE FROM trait_scores WHERE participant_id IN "
                "(SELECT participant_id FROM scored_frame)"
            )
            con.execute(
                "INSERT INTO trait_scores SELECT participant_id, trait, score, "
                "coverage, n_obs, mapping_version, reference, data_fingerprint, "
                "CAST(details AS JSON), scored_at FROM scored_frame"
            )
            con.execute(
                "INSERT INTO trait_score_history SELECT ?, participant_id, trait, "
                "score, coverage, n_obs, mapping_version, reference, "
                "data_fingerprint, scored_at FROM scored_frame",
                [run_id],
            )
            workspace.audit(
                con,
                "score",
                None,
                {"participants": len(chosen), "run_id": run_id},
            )
        con.unregister("scored_frame")

    traits_summary = {
        trait: {
            "scored": int(frame[(frame.trait == trait)]["score"].notna().sum()),
            "null": int(frame[(frame.trait == trait)]["score"].isna().sum()),
        }
        for trait in TRAITS
    }
    log.info("scored %d participants with mapping %s", len(chosen), mapping["version"])
    return {
        "run_id": int(run_id),
        "mapping_version": mapping["version"],
        "participants": len(chosen),
        "traits": traits_summary,
        "reference": {name: ref["kind"] for name, ref in reference.items()},
        "scored_at": scored_at.isoformat(),
    }


def trait_table(
    workspace: Workspace, participant_id: str | None = None
) -> pd.DataFrame:
    """Return the latest trait scores, ordered by participant and trait."""
    sql = (
        "SELECT participant_id, trait, score, coverage, n_obs, mapping_version, "
        "reference, data_fingerprint, CAST(details AS VARCHAR) AS details, "
        "scored_at FROM trait_scores"
    )
    return participants.read_rows(
        workspace, sql, "participant_id, trait", participant_id
    )


def trait_history(workspace: Workspace, participant_id: str) -> pd.DataFrame:
    """Return every stored scoring run of one participant, oldest first."""
    with workspace.connect() as con:
        participants.require(con, participant_id)
        return con.execute(
            "SELECT run_id, participant_id, trait, score, coverage, n_obs, "
            "mapping_version, reference, data_fingerprint, scored_at "
            "FROM trait_score_history WHERE participant_id = ? "
            "ORDER BY run_id, trait",
            [participant_id],
        ).df()
