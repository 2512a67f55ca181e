"""Questionnaire import, scoring and reliability (IPIP-50, TIPI, IPIP-NEO-120).

A questionnaire file is a CSV with a ``participant`` column and one column per
item, named by the item's number in the instrument's published order (``1`` ..
``50`` or ``item1`` .. ``item50``). An empty cell is a missing answer. Answers are
whole numbers on the instrument's response scale; anything else rejects the whole
file, and nothing from it is stored.

Scores are stored on the mean-item scale of the instrument (1-5 for IPIP-50, 1-7
for TIPI), after reversing the minus-keyed items (``min + max - answer``). Both
instruments measure Emotional Stability; Neuroticism is stored beside it as its
reverse pole (``min + max - Emotional Stability``, so 6 - ES for IPIP-50 and
8 - ES for TIPI), which is what the trait scores are compared with.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .. import participants
from ..errors import InputError, UsageError
from ..store import transaction
from ..workspace import Workspace

log = logging.getLogger(__name__)

ITEM_COLUMN = re.compile(r"^(?:item)?(\d+)$", re.IGNORECASE)
MAX_LISTED_ERRORS = 10


@dataclass(frozen=True)
class Scale:
    """One scale of an instrument: its items with their keys (+1 or -1)."""

    name: str
    label: str
    trait: str | None
    items: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Instrument:
    """A questionnaire's items, scales, response range and missing-answer rule.

    ``max_missing_share`` is the largest share of a scale's items that may be
    missing for the scale still to be scored (as the mean of answered items).
    ``derived`` maps a scale name to (label, trait, source scale) for scales stored
    as the reverse pole of another.
    """

    name: str
    title: str
    n_items: int
    response_min: int
    response_max: int
    max_missing_share: float
    scales: tuple[Scale, ...]
    derived: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)
    reliability_statistic: str = "cronbach_alpha"
    sources: tuple[str, ...] = ()

    def reverse(self, answer: float) -> float:
        return self.response_min + self.response_max - answer


INSTRUMENTS: dict[str, Instrument] = {}


def register_instrument(instrument: Instrument) -> None:
    """Make an instrument available to :func:`import_questionnaire` by its name."""
    INSTRUMENTS[instrument.name] = instrument


def load_key_file(file_name: str, reliability_statistic: str) -> Instrument:
    """Build an :class:`Instrument` from a key file in ``twinme_lab/data``."""
    text = resources.files("twinme_lab.data").joinpath(file_name).read_text()
    doc = json.loads(text)
    by_scale: dict[str, list[tuple[int, int]]] = {name: [] for name in doc["scales"]}
    for entry in doc["items"]:
        by_scale[entry["scale"]].append((int(entry["item"]), int(entry["key"])))
    scales = tuple(
        Scale(name, meta["label"], meta["trait"], tuple(by_scale[name]))
        for name, meta in doc["scales"].items()
    )
    derived = {
        name: (meta["label"], meta["trait"], meta["reverse_of"])
        for name, meta in doc.get("derived_scales", {}).items()
    }
    return Instrument(
        name=doc["instrument"],
        title=doc["name"],
        n_items=len(doc["items"]),
        response_min=int(doc["response_min"]),
        response_max=int(doc["response_max"]),
        max_missing_share=float(doc["max_missing_share"]),
        scales=scales,
        derived=derived,
        reliability_statistic=reliability_statistic,
        sources=tuple(doc["sources"]),
    )


register_instrument(load_key_file("ipip50_key.json", "cronbach_alpha"))
register_instrument(load_key_file("tipi_key.json", "inter_item_r"))


def _register_ipip_neo_120() -> None:
    from . import ipip_neo_120

    register_instrument(ipip_neo_120.instrument())


_register_ipip_neo_120()


def get_instrument(name: str) -> Instrument:
    """Return a registered instrument, or raise :class:`UsageError`."""
    try:
        return INSTRUMENTS[name]
    except KeyError:
        known = ", ".join(sorted(INSTRUMENTS))
        raise UsageError(f"Unknown instrument {name!r}; use one of: {known}.") from None


@dataclass(frozen=True)
class ScaleScore:
    """A scale's mean-item score (None when too many items are missing)."""

    scale: str
    trait: str | None
    score: float | None
    n_items: int
    n_missing: int


def score_answers(
    instrument: Instrument, answers: dict[int, float]
) -> list[ScaleScore]:
    """Score one participant's answers (item number -> raw answer) on every scale.

    A scale is scored when at most ``max_missing_share`` of its items are missing,
    as the mean of the answered items after reversal; otherwise its score is None.
    """
    results: list[ScaleScore] = []
    by_name: dict[str, ScaleScore] = {}
    for scale in instrument.scales:
        keyed = [
            answers[item] if key > 0 else instrument.reverse(answers[item])
            for item, key in scale.items
            if item in answers
        ]
        n_items = len(scale.items)
        n_missing = n_items - len(keyed)
        allowed = math.floor(instrument.max_missing_share * n_items + 1e-9)
        score = None
        if keyed and n_missing <= allowed:
            score = math.fsum(keyed) / len(keyed)
        result = ScaleScore(scale.name, scale.trait, score, n_items, n_missing)
        results.append(result)
        by_name[scale.name] = result
    for name, (_, trait, source) in instrument.derived.items():
        base = by_name[source]
        score = None if base.score is None else instrument.reverse(base.score)
        results.append(ScaleScore(name, trait, score, base.n_items, base.n_missing))
    return results


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Return the header and (line number, cells) for every non-empty row."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"Questionnaire file {path} not found.") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; give the CSV file itself.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path.name} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV."
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path.name} is empty; expected a header row.") from None
    except csv.Error as exc:
        raise InputError(f"{path.name} is not valid CSV: {exc}.") from None
    rows = []
    try:
        for cells in reader:
            if not cells or all(not cell.strip() for cell in cells):
                continue
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise InputError(
            f"{path.name} line {reader.line_num} is not valid CSV: {exc}."
        ) from None
    return [cell.strip() for cell in header], rows


def _map_columns(
    file_name: str, header: list[str], instrument: Instrument
) -> tuple[int, dict[int, int]]:
    """Return the participant column index and item number -> column index."""
    participant_index = None
    items: dict[int, int] = {}
    unknown = []
    for index, name in enumerate(header):
        if name.lower() == "participant":
            if participant_index is not None:
                raise InputError(f"{file_name} has two 'participant' columns.")
            participant_index = index
            continue
        match = ITEM_COLUMN.match(name)
        if not match:
            unknown.append(name)
            continue
        item = int(match.group(1))
        if item in items:
            raise InputError(f"{file_name} has two columns for item {item}.")
        items[item] = index

    if participant_index is None and len(header) == 1 and ";" in header[0]:
        raise InputError(
            f"{file_name} separates its columns with ';'; save it as a CSV with "
            "commas between columns."
        )
    if participant_index is None:
        raise InputError(
            f"{file_name} has no 'participant' column; the header must name the "
            "participant column and the item columns (1, 2, ... or item1, item2, ...)."
        )

    expected = set(range(1, instrument.n_items + 1))
    extra = sorted(set(items) - expected)
    if unknown or extra:
        listed = unknown + [header[items[i]] for i in extra]
        raise InputError(
            f"{file_name} has columns that are not {instrument.name} items: "
            f"{', '.join(repr(c) for c in listed)}. {instrument.title} has items "
            f"1 to {instrument.n_items}; remove the other columns."
        )
    missing = sorted(expected - set(items))
    if missing:
        raise InputError(
            f"{file_name} lacks columns for {instrument.name} items "
            f"{', '.join(map(str, missing))}; every item needs a column (leave "
            "cells empty for unanswered items)."
        )
    return participant_index, items


def _parse_answer(cell: str, instrument: Instrument) -> float | None | str:
    """Return the answer, None for an empty cell, or an error description."""
    text = cell.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return f"{text!r} is not a number"
    if not math.isfinite(value) or value != int(value):
        return f"{text!r} is not a whole number"
    if not instrument.response_min <= value <= instrument.response_max:
        return (
            f"{text!r} is out of range {instrument.response_min}-"
            f"{instrument.response_max}"
        )
    return value


def parse_file(path: Path, instrument: Instrument) -> dict[str, dict[int, float]]:
    """Read and check a questionnaire CSV; return participant -> item -> answer."""
    header, rows = _read_csv(path)
    participant_index, item_columns = _map_columns(path.name, header, instrument)
    errors: list[str] = []
    result: dict[str, dict[int, float]] = {}
    for line, cells in rows:
        if len(cells) != len(header):
            errors.append(
                f"line {line} has {len(cells)} cells but the header has {len(header)}"
            )
            continue
        pid = cells[participant_index].strip()
        if not pid:
            errors.append(f"line {line}: the participant cell is empty")
            continue
        if pid in result:
            errors.append(f"line {line}: participant {pid} appears a second time")
            continue
        answers: dict[int, float] = {}
        for item, column in sorted(item_columns.items()):
            parsed = _parse_answer(cells[column], instrument)
            if isinstance(parsed, str):
                errors.append(
                    f"line {line} (participant {pid}), column "
                    f"{header[column]!r}: {parsed}"
                )
            elif parsed is not None:
                answers[item] = parsed
        result[pid] = answers
    if not rows:
        errors.append("the file has a header but no answers")
    if errors:
        shown = "; ".join(errors[:MAX_LISTED_ERRORS])
        more = len(errors) - MAX_LISTED_ERRORS
        suffix = f"; and {more} more" if more > 0 else ""
        raise InputError(
            f"{path.name} was rejected and nothing was stored: {shown}{suffix}. "
            f"{instrument.title} answers are whole numbers from "
            f"{instrument.response_min} to {instrument.response_max}; leave a cell "
            "empty for an unanswered item."
        )
    return result


def _frames(
    spec: Instrument,
    answers_by_participant: dict[str, dict[int, float]],
    scored: dict[str, list[ScaleScore]],
) -> dict[str, pd.DataFrame]:
    """Return the rows to store: per-participant counts, answers and scores."""
    pids = sorted(answers_by_participant)
    counts = [
        json.dumps(
            {
                "answers": len(answers_by_participant[pid]),
                "missing": spec.n_items - len(answers_by_participant[pid]),
                "scored_scales": sum(s.score is not None for s in scored[pid]),
            },
            sort_keys=True,
        )
        for pid in pids
    ]
    answers = [
        (pid, item, value)
        for pid in pids
        for item, value in sorted(answers_by_participant[pid].items())
    ]
    scores = [
        (pid, s.scale, s.trait, s.score, s.n_items, s.n_missing)
        for pid in pids
        for s in scored[pid]
    ]
    answer_frame = pd.DataFrame(answers, columns=["participant_id", "item", "answer"])
    answer_frame = answer_frame.astype({"item": "int64", "answer": "float64"})
    score_frame = pd.DataFrame(
        scores,
        columns=["participant_id", "scale", "trait", "score", "n_items", "n_missing"],
    )
    score_frame = score_frame.astype({"score": "float64", "trait": "object"})
    return {
        "q_counts": pd.DataFrame({"participant_id": pids, "counts": counts}),
        "q_answers": answer_frame,
        "q_scores": score_frame,
    }


def _store(con, spec: Instrument, file_name: str, digest: str, frames) -> None:
    """Replace the participants' answers and scores in one transaction.

    Each participant gets an ``imports`` row (the answers' provenance) and an
    audit entry with counts only.
    """
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        with transaction(con):
            con.execute(
                "INSERT INTO imports (participant_id, platform, format, file_name, "
                "file_sha256, imported_at, counts) "
                "SELECT participant_id, 'questionnaire', ?, ?, ?, now(), "
                "CAST(counts AS JSON) FROM q_counts",
                [spec.name, file_name, digest],
            )
            for table in ("questionnaire_answers", "questionnaire_scores"):
                con.execute(
                    f"DELETE FROM {table} WHERE instrument = ? AND participant_id IN "
                    "(SELECT participant_id FROM q_counts)",
                    [spec.name],
                )
            # The newest imports row per participant and file digest is this one,
            # because import_id comes from an increasing sequence.
            con.execute(
                """
                INSERT INTO questionnaire_answers
                SELECT a.participant_id, ?, a.item, a.answer, i.import_id
                FROM (SELECT CAST(participant_id AS VARCHAR) AS participant_id,
                             CAST(item AS INTEGER) AS item,
                             CAST(answer AS DOUBLE) AS answer
                      FROM q_answers) a
                JOIN (SELECT participant_id, max(import_id) AS import_id
                      FROM imports
                      WHERE platform = 'questionnaire' AND format = ?
                        AND file_sha256 = ?
                      GROUP BY participant_id) i USING (participant_id)
                """,
                [spec.name, spec.name, digest],
            )
            con.execute(
                "INSERT INTO questionnaire_scores (participant_id, instrument, scale, "
                "trait, score, n_items, n_missing, scored_at) "
                "SELECT participant_id, ?, scale, CAST(trait AS VARCHAR), "
                "CAST(score AS DOUBLE), n_items, n_missing, now() FROM q_scores",
                [spec.name],
            )
            con.execute(
                "INSERT INTO audit_log (occurred_at, kind, participant_id, counts) "
                "SELECT now(), 'questionnaire.import', participant_id, "
                "CAST(counts AS JSON) FROM q_counts"
            )
    finally:
        for name in frames:
            con.unregister(name)


def import_questionnaire(
    workspace: Workspace, path: str | Path, instrument: str
) -> dict:
    """Import a questionnaire CSV, store its answers and scale scores.

    All or nothing: a file with any invalid cell or unknown participant stores
    nothing. A participant's earlier answers and scores for the same instrument are
    replaced. Returns a summary with counts per participant and scale.
    """
    spec = get_instrument(instrument)
    path = Path(path)
    answers_by_participant = parse_file(path, spec)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    scored = {
        pid: score_answers(spec, answers)
        for pid, answers in answers_by_participant.items()
    }
    with workspace.connect() as con:
        known = {
            pid
            for (pid,) in con.execute(
                "SELECT participant_id FROM participants"
            ).fetchall()
        }
        unknown = sorted(set(answers_by_participant) - known)
        if unknown:
            raise InputError(
                f"{path.name} was rejected and nothing was stored: participants "
                f"{', '.join(unknown)} are not enrolled; enrol them with "
                "'twinme-lab participants add ID' first, or fix the ids."
            )
        frames = _frames(spec, answers_by_participant, scored)
        _store(con, spec, path.name, digest, frames)

    scale_counts = {}
    for scores in scored.values():
        for s in scores:
            entry = scale_counts.setdefault(s.scale, {"scored": 0, "null": 0})
            entry["scored" if s.score is not None else "null"] += 1
    log.info("imported %s answers for %d participants", spec.name, len(scored))
    return {
        "file": path.name,
        "instrument": spec.name,
        "participants": len(scored),
        "answers": sum(len(a) for a in answers_by_participant.values()),
        "missing_answers": sum(
            spec.n_items - len(a) for a in answers_by_participant.values()
        ),
        "scales": scale_counts,
    }


def questionnaire_table(
    workspace: Workspace, participant_id: str | None = None
) -> pd.DataFrame:
    """Return stored scale scores, ordered by participant, instrument and scale."""
    sql = (
        "SELECT participant_id, instrument, scale, trait, score, n_items, n_missing, "
        "scored_at FROM questionnaire_scores"
    )
    return participants.read_rows(
        workspace, sql, "participant_id, instrument, scale", participant_id
    )


def cronbach_alpha(matrix: np.ndarray) -> float | None:
    """Return Cronbach's alpha of a participants x items matrix (sample variances).

    None when there are fewer than two participants or two items, or the total
    score does not vary.
    """
    n, k = matrix.shape
    if n < 2 or k < 2:
        return None
    item_variances = matrix.var(axis=0, ddof=1)
    total_variance = matrix.sum(axis=1).var(ddof=1)
    if total_variance == 0:
        return None
    return float(k / (k - 1) * (1 - item_variances.sum() / total_variance))


def inter_item_r(matrix: np.ndarray) -> float | None:
    """Return the Pearson correlation of a two-column matrix, None if undefined."""
    if matrix.shape[0] < 3:
        return None
    x, y = matrix[:, 0], matrix[:, 1]
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def reliability(workspace: Workspace, instrument: str) -> pd.DataFrame:
    """Return each scale's reliability in the cohort, from the stored answers.

    IPIP-50 gives Cronbach's alpha per scale; TIPI, with two items a scale, gives
    the correlation between the two keyed items instead. Each uses the
    participants who answered every item of that scale.
    """
    spec = get_instrument(instrument)
    with workspace.connect() as con:
        answers = con.execute(
            "SELECT participant_id, item, answer FROM questionnaire_answers "
            "WHERE instrument = ? ORDER BY participant_id, item",
            [spec.name],
        ).df()
    wide = answers.pivot(index="participant_id", columns="item", values="answer")
    rows = []
    for scale in spec.scales:
        columns = [item for item, _ in scale.items]
        present = [c for c in columns if c in wide.columns]
        if len(present) == len(columns):
            block = wide[columns].dropna()
        else:
            block = pd.DataFrame(columns=columns)
        keyed = np.array(
            [
                block[item].to_numpy(dtype=float)
                if key > 0
                else spec.reverse(block[item].to_numpy(dtype=float))
                for item, key in scale.items
            ]
        ).T.reshape(len(block), len(columns))
        if spec.reliability_statistic == "cronbach_alpha":
            value = cronbach_alpha(keyed)
        else:
            value = inter_item_r(keyed)
        rows.append(
            {
                "instrument": spec.name,
                "scale": scale.name,
                "statistic": spec.reliability_statistic,
                "value": value,
                "n_participants": len(block),
                "n_items": len(columns),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "instrument",
            "scale",
            "statistic",
            "value",
            "n_participants",
            "n_items",
        ],
    )
