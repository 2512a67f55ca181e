"""The data behind one participant's trait report.

:func:`load_report_data` gathers everything the report notebook shows: predicted
traits with coverage, the features and weights behind each trait, questionnaire
scores, a summary of the imported events, and the trait history. It reads the
traits and features through their public functions and counts events in the event
tables itself. The runner calls it too, to write ``trait_scores.json``, so the
JSON and the notebook show the same numbers unless the data changes between the
two reads (the fingerprint in the JSON is the one of the runner's read).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from .. import participants
from ..errors import UsageError
from ..workspace import Workspace

# Order of the five traits in every table and chart (the usual OCEAN order).
TRAITS = (
    "Openness",
    "Conscientiousness",
    "Extraversion",
    "Agreeableness",
    "Neuroticism",
)

_TRAIT_NAMES = {trait.lower(): trait for trait in TRAITS}


def display_trait(name) -> str | None:
    """Return the report's spelling of a trait name ('openness' -> 'Openness')."""
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return None
    return _TRAIT_NAMES.get(str(name).strip().lower())


@dataclass
class ReportData:
    """Everything one trait report shows, as plain values and DataFrames."""

    participant_id: str
    timezone: str | None
    mapping_version: str | None
    reference: str | None
    traits: pd.DataFrame
    features: pd.DataFrame
    questionnaires: pd.DataFrame
    comparison: pd.DataFrame
    summary: pd.DataFrame
    history: pd.DataFrame
    fingerprint: str = field(default="")

    def scores(self) -> dict[str, dict]:
        """Return per trait: score, coverage and n_obs, with None for unknowns."""
        result = {}
        for row in self.traits.itertuples(index=False):
            result[row.trait] = {
                "score": _number_or_none(row.score),
                "coverage": _number_or_none(row.coverage),
                "n_obs": _int_or_none(row.n_obs),
            }
        return result


def _number_or_none(value) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _int_or_none(value) -> int | None:
    number = _number_or_none(value)
    return None if number is None else int(number)


def trait_frame(ws: Workspace, participant_id: str) -> pd.DataFrame:
    """Return the participant's five traits in OCEAN order, unscored ones as NULL.

    A trait the scorer never wrote is shown with score NULL and coverage 0, the
    same as a trait the scorer found no evidence for.
    """
    from .. import traits

    table = traits.trait_table(ws, participant_id).copy()
    if len(table):
        table["trait"] = table["trait"].map(display_trait)
    columns = [
        "trait",
        "score",
        "coverage",
        "n_obs",
        "mapping_version",
        "reference",
        "data_fingerprint",
        "details",
    ]
    rows = []
    for trait in TRAITS:
        match = table[table["trait"] == trait] if len(table) else table
        if len(match):
            record = match.iloc[0]
            rows.append([trait] + [record.get(c) for c in columns[1:]])
        else:
            rows.append([trait, None, 0.0, 0, None, None, None, None])
    frame = pd.DataFrame(rows, columns=columns)
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
    frame["coverage"] = pd.to_numeric(frame["coverage"], errors="coerce").fillna(0.0)
    frame["n_obs"] = pd.to_numeric(frame["n_obs"], errors="coerce").fillna(0)
    frame["n_obs"] = frame["n_obs"].astype("int64")
    return frame


def mapping_rows(ws: Workspace, version: str | None) -> tuple[str, pd.DataFrame]:
    """Return a mapping's version and one row per trait and feature with its weight.

    Each row carries the weight's status (published, exploratory or tuned) and,
    for a published weight, its source as "authors (year): what was measured".
    """
    from .. import traits

    mapping = traits.load_mapping(version, ws)
    sources = mapping.get("sources", {})
    rows = []
    for trait, entries in mapping["traits"].items():
        for entry in entries:
            rows.append(
                {
                    "trait": display_trait(trait),
                    "feature": entry["feature"],
                    "weight": float(entry["weight"]),
                    "status": entry.get("status"),
                    "source": _cite(sources.get(entry.get("source"))),
                    "note": entry.get("note"),
                }
            )
    columns = ["trait", "feature", "weight", "status", "source", "note"]
    return str(mapping["version"]), pd.DataFrame(rows, columns=columns)


def _cite(source: dict | None) -> str | None:
    if not source:
        return None
    text = f"{source.get('authors', '')} ({source.get('year', 'n.d.')})".strip()
    if source.get("measured"):
        text += f": {source['measured']}"
    return text


def feature_frame(
    ws: Workspace, participant_id: str, mapping: pd.DataFrame, z_scores: dict
) -> pd.DataFrame:
    """Join the mapping's features with the participant's values, per trait.

    ``z_scores`` maps (trait, feature) to the z-score the scorer used, from the
    stored score details; a feature without one contributed nothing.
    """
    from .. import features

    values = features.features_table(ws, participant_id)
    keep = ["feature", "value", "n_obs", "window_start", "window_end"]
    values = values.reindex(columns=keep)
    frame = mapping.merge(values, on="feature", how="left")
    frame["z"] = [
        z_scores.get((trait, feature))
        for trait, feature in zip(frame["trait"], frame["feature"], strict=True)
    ]
    frame["z"] = pd.to_numeric(frame["z"], errors="coerce")
    frame["n_obs"] = pd.to_numeric(frame["n_obs"], errors="coerce").fillna(0)
    frame["n_obs"] = frame["n_obs"].astype("int64")
    order = {trait: i for i, trait in enumerate(TRAITS)}
    frame["_order"] = frame["trait"].map(order)
    frame = frame.sort_values(["_order", "feature"], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)


def questionnaire_frames(
    ws: Workspace, participant_id: str, traits_frame: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the questionnaire scores and a per-trait predicted-beside-measured table.

    The comparison lists a trait only where both a prediction and a questionnaire
    score exist. The two are on different scales: the prediction is a z-score and
    the questionnaire score is the instrument's mean item answer.
    """
    from .. import traits
    from ..traits.norms import load_norms, percentile

    scores = traits.questionnaire_table(ws, participant_id)
    scores = scores.reindex(
        columns=["instrument", "scale", "trait", "score", "n_items", "n_missing"]
    )
    scores = scores.sort_values(["instrument", "scale"], kind="stable")
    scores = scores.reset_index(drop=True)
    # The trait column names the Big Five trait a scale measures, and is NULL for
    # a scale such as Emotional Stability that is reported through its reverse pole.
    scores["trait"] = scores["trait"].map(display_trait)
    percentiles = [
        percentile(load_norms(instrument), scale, _number_or_none(value))
        for instrument, scale, value in zip(
            scores["instrument"], scores["scale"], scores["score"], strict=True
        )
    ]
    scores["percentile"] = [value for value, _ in percentiles]
    scores["percentile_note"] = [reason for _, reason in percentiles]

    predicted = traits_frame.set_index("trait")
    rows = []
    for record in scores.itertuples(index=False):
        if not isinstance(record.trait, str) or _number_or_none(record.score) is None:
            continue
        prediction = _number_or_none(predicted.at[record.trait, "score"])
        if prediction is None:
            continue
        rows.append(
            {
                "trait": record.trait,
                "predicted_z": prediction,
                "coverage": float(predicted.at[record.trait, "coverage"]),
                "instrument": record.instrument,
                "questionnaire_score": float(record.score),
            }
        )
    order = {trait: i for i, trait in enumerate(TRAITS)}
    rows.sort(key=lambda row: (order[row["trait"]], row["instrument"]))
    comparison = pd.DataFrame(
        rows,
        columns=[
            "trait",
            "predicted_z",
            "coverage",
            "instrument",
            "questionnaire_score",
        ],
    )
    return scores, comparison


def data_summary(ws: Workspace, participant_id: str) -> pd.DataFrame:
    """Count a participant's events per source and kind, with their time window.

    Supplemental Netflix rows (trailers, hooks, recaps) are counted on their own
    line, because they never count as viewing.

    NOTE: only the Spotify and Netflix tables (listening_events, viewing_events,
    library_items) are counted; events of other platforms are not listed yet.
    """
    with ws.connect() as con:
        participants.require(con, participant_id)
        listening = con.execute(
            "SELECT source, kind, count(*) AS events, "
            "sum(ms_played) / 3600000.0 AS hours, "
            "min(ended_at) AS first_event, max(ended_at) AS last_event "
            "FROM listening_events WHERE participant_id = ? "
            "GROUP BY source, kind",
            [participant_id],
        ).df()
        viewing = con.execute(
            "SELECT source, CASE WHEN is_supplemental THEN 'supplemental' "
            "ELSE 'viewing' END AS kind, count(*) AS events, "
            "sum(duration_s) / 3600.0 AS hours, "
            "min(coalesce(started_at, CAST(watched_on AS TIMESTAMPTZ))) "
            "AS first_event, "
            "max(coalesce(started_at, CAST(watched_on AS TIMESTAMPTZ))) "
            "AS last_event "
            "FROM viewing_events WHERE participant_id = ? "
            "GROUP BY source, is_supplemental",
            [participant_id],
        ).df()
        library = con.execute(
            "SELECT 'spotify_library' AS source, item_type AS kind, "
            "count(*) AS events FROM library_items WHERE participant_id = ? "
            "GROUP BY item_type",
            [participant_id],
        ).df()
    frames = [f for f in (listening, viewing, library) if len(f)]
    columns = ["source", "kind", "events", "hours", "first_event", "last_event"]
    if not frames:
        return pd.DataFrame(columns=columns)
    summary = pd.concat(frames, ignore_index=True).reindex(columns=columns)
    summary["events"] = summary["events"].astype("int64")
    return summary.sort_values(["source", "kind"], kind="stable").reset_index(drop=True)


def history_frame(ws: Workspace, participant_id: str) -> pd.DataFrame:
    """Return the stored scoring runs of the participant, oldest first."""
    from .. import traits

    history = traits.trait_history(ws, participant_id)
    if not len(history):
        return pd.DataFrame(columns=["trait", "score", "coverage", "scored_at"])
    history = history.copy()
    history["trait"] = history["trait"].map(display_trait)
    history["scored_at"] = pd.to_datetime(history["scored_at"], utc=True)
    return history.sort_values(["scored_at", "trait"], kind="stable").reset_index(
        drop=True
    )


def _z_scores(traits_frame: pd.DataFrame) -> dict:
    """Read each (trait, feature) z-score from the stored score details."""
    found = {}
    for trait, details in zip(
        traits_frame["trait"], traits_frame["details"], strict=True
    ):
        if not details:
            continue
        entries = json.loads(details) if isinstance(details, str) else details
        for entry in entries:
            found[(trait, entry.get("feature"))] = entry.get("z")
    return found


def fingerprint(report: ReportData) -> str:
    """Return a SHA-256 digest of the data a report is computed from.

    It covers the feature values, the trait scores with their reference, the
    questionnaire scores, the event summary and the mapping version, and leaves
    out computation times, so recomputing unchanged data keeps the digest.
    """
    digest = hashlib.sha256()

    def add(label: str, frame: pd.DataFrame, columns: list[str]) -> None:
        digest.update(label.encode())
        present = [c for c in columns if c in frame.columns]
        for row in frame[present].itertuples(index=False):
            digest.update(json.dumps([_canonical(v) for v in row]).encode())

    add("mapping", pd.DataFrame({"v": [report.mapping_version]}), ["v"])
    add(
        "traits",
        report.traits,
        [
            "trait",
            "score",
            "coverage",
            "n_obs",
            "mapping_version",
            "reference",
            "data_fingerprint",
        ],
    )
    add(
        "features",
        report.features,
        ["trait", "feature", "weight", "value", "n_obs", "window_start", "window_end"],
    )
    add(
        "questionnaires",
        report.questionnaires,
        ["instrument", "scale", "score", "n_items", "n_missing"],
    )
    add(
        "summary",
        report.summary,
        ["source", "kind", "events", "hours", "first_event", "last_event"],
    )
    return digest.hexdigest()


def _canonical(value):
    """Turn a cell into a JSON value that is the same for the same data."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, bool):
        return value
    number = _number_or_none(value)
    if number is not None and not isinstance(value, str):
        return repr(number)
    if isinstance(value, float):
        return None
    return str(value)


def load_report_data(
    ws: Workspace, participant_id: str, mapping: str | None = None
) -> ReportData:
    """Gather the report data of one enrolled participant.

    ``mapping`` names the mapping version to explain the scores with; by default
    it is the version the stored scores were computed with. Asking for another
    version than the scores used raises :class:`UsageError`, because the weights
    shown would not be the ones behind the numbers. All reads share one
    connection (see :meth:`Workspace.keep_open`).
    """
    with ws.keep_open():
        return _load_report_data(ws, participant_id, mapping)


def _load_report_data(
    ws: Workspace, participant_id: str, mapping: str | None
) -> ReportData:
    record = participants.get(ws, participant_id)
    traits_frame = trait_frame(ws, participant_id)

    used = sorted({v for v in traits_frame["mapping_version"] if v is not None})
    if len(used) > 1:
        raise UsageError(
            f"The trait scores of {participant_id} mix mapping versions "
            f"{', '.join(used)}; run 'twinme-lab score' again before the report."
        )
    scored_with = used[0] if used else None
    if mapping is not None and scored_with is not None and mapping != scored_with:
        from .. import traits

        # An unknown version raises NotFoundError here, as it does for score.
        traits.load_mapping(mapping, ws)
        raise UsageError(
            f"The trait scores of {participant_id} were computed with mapping "
            f"{scored_with}, not {mapping}; score with mapping {mapping} first, or "
            "leave out --mapping."
        )
    version, weights = mapping_rows(ws, mapping or scored_with)

    # A trait without evidence has the reference "none"; it standardized nothing.
    references = sorted(
        {v for v in traits_frame["reference"] if v is not None and v != "none"}
    )
    questionnaires, comparison = questionnaire_frames(ws, participant_id, traits_frame)
    report = ReportData(
        participant_id=participant_id,
        timezone=record.get("timezone"),
        mapping_version=version,
        reference=", ".join(references) or None,
        traits=traits_frame,
        features=feature_frame(ws, participant_id, weights, _z_scores(traits_frame)),
        questionnaires=questionnaires,
        comparison=comparison,
        summary=data_summary(ws, participant_id),
        history=history_frame(ws, participant_id),
    )
    report.fingerprint = fingerprint(report)
    return report
