"""Percentiles of questionnaire scores against each instrument's published norms.

Each instrument has its own file, ``twinme_lab/data/norms_<instrument>.json``,
holding either ``"status": "published"`` with a citation and a mean and standard
deviation per scale (on the instrument's mean-item scale), or
``"status": "unavailable"`` with the reason. Norms of one instrument are never
applied to another's scores: a lookup names the instrument, and an instrument
without a file or without published norms gets a NULL percentile and its reason.

A percentile is ``100 * Phi((score - mean) / sd)``, which assumes the normative
scores are roughly normal.

Shipped: TIPI norms from Gosling, Rentfrow and Swann (2003) and IPIP-NEO-120
domain norms from Kajonius and Johnson (2019). Each file says which sample the
figures describe and how they were checked. IPIP-50 scores get no percentile,
because the IPIP project publishes no norms for its scales.
"""

from __future__ import annotations

import errno
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from ..errors import InputError, OutputError

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
    label: str | None = None
    sample: str | None = None
    checked: str | None = None
    missing_scale_reason: str | None = None


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
    return Norms(
        instrument,
        status,
        citation=data["citation"],
        scales=scales,
        label=data.get("label") or data["citation"],
        sample=data.get("sample"),
        checked=data.get("checked"),
        missing_scale_reason=data.get("missing_scale_reason"),
    )


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
            norms.missing_scale_reason
            or f"The published {norms.instrument} norms have no scale {scale!r}."
        )
    z = (score - norm.mean) / norm.sd
    return 50.0 * (1.0 + math.erf(z / math.sqrt(2.0))), None


# Export of the trait table for analysts. It lives beside the norms because its
# percentiles come from them. Only pseudonymous ids, scores and their provenance
# are exported: never tokens, names, feature details or raw records.

EXPORT_FORMATS = ("csv", "json", "parquet")
EXPORT_COLUMNS = (
    "participant_id",
    "source",
    "instrument",
    "trait",
    "score",
    "percentile",
    "percentile_note",
    "coverage",
    "n_obs",
    "mapping_version",
    "scored_at",
)
INTEREST_COLUMNS = ("participant_id", "category", "label", "weight", "n_obs")
PREDICTED_NOTE = (
    "Predicted scores are z-scores against the mapping's reference; no "
    "instrument's norms apply to them."
)


def export_table(workspace) -> pd.DataFrame:
    """Return predicted and questionnaire trait scores with percentiles.

    Predicted rows (``source`` = ``predicted``) carry coverage, observations and
    the mapping version, and no percentile. Questionnaire rows (``source`` =
    ``questionnaire``) carry the percentile from their own instrument's norms,
    with those norms named in ``percentile_note``, or NULL with the reason there.
    """
    with workspace.connect() as con:
        predicted = con.execute(
            "SELECT participant_id, trait, score, coverage, n_obs, mapping_version, "
            "scored_at FROM trait_scores ORDER BY participant_id, trait"
        ).df()
        answered = con.execute(
            "SELECT participant_id, instrument, scale, trait, score, n_items, "
            "n_missing, scored_at FROM questionnaire_scores WHERE trait IS NOT NULL "
            "ORDER BY participant_id, instrument, trait"
        ).df()
    rows = []
    for row in predicted.itertuples(index=False):
        rows.append(
            {
                "participant_id": row.participant_id,
                "source": "predicted",
                "instrument": None,
                "trait": row.trait,
                "score": None if pd.isna(row.score) else float(row.score),
                "percentile": None,
                "percentile_note": PREDICTED_NOTE,
                "coverage": float(row.coverage),
                "n_obs": int(row.n_obs),
                "mapping_version": row.mapping_version,
                "scored_at": row.scored_at,
            }
        )
    loaded: dict[str, Norms] = {}
    for row in answered.itertuples(index=False):
        instrument_norms = loaded.setdefault(row.instrument, load_norms(row.instrument))
        score = None if pd.isna(row.score) else float(row.score)
        value, reason = percentile(instrument_norms, row.scale, score)
        if value is not None:
            reason = f"Against {instrument_norms.label}."
        rows.append(
            {
                "participant_id": row.participant_id,
                "source": "questionnaire",
                "instrument": row.instrument,
                "trait": row.trait,
                "score": score,
                "percentile": value,
                "percentile_note": reason,
                "coverage": None,
                "n_obs": int(row.n_items - row.n_missing),
                "mapping_version": None,
                "scored_at": row.scored_at,
            }
        )
    frame = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
    frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
    return frame


def interests_table(workspace) -> pd.DataFrame:
    """Return the stored interests (category, label, weight) per participant."""
    with workspace.connect() as con:
        return con.execute(
            f"SELECT {', '.join(INTEREST_COLUMNS)} FROM interests "
            "ORDER BY participant_id, category, label"
        ).df()


def write_export(workspace, fmt: str, out=None, interests: bool = False) -> dict:
    """Write the export table as CSV, JSON or Parquet and return the paths.

    The default file is ``<workspace>/exports/traits.<fmt>``. With ``interests``
    the interests go to ``<stem>_interests.<fmt>`` beside it (in JSON, into the
    same file under ``"interests"``); without it no interest leaves the workspace.
    Each file is written to a temporary file beside it and then renamed, so a
    failed write raises :class:`OutputError` and leaves no partly written file.
    """
    from ..errors import UsageError

    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}."
        )
    path = Path(out) if out else workspace.root / "exports" / f"traits.{fmt}"
    _create_export_folder(path)
    table = export_table(workspace)
    extra = interests_table(workspace) if interests else None
    written = {"traits": str(path), "rows": len(table)}
    if fmt == "json":
        document = {
            "traits": json.loads(table.to_json(orient="records", date_format="iso"))
        }
        if extra is not None:
            document["interests"] = json.loads(extra.to_json(orient="records"))
        text = json.dumps(document, indent=2) + "\n"
        writers = {path: lambda target: target.write_text(text, encoding="utf-8")}
    else:
        writers = {path: lambda target: _write_frame(table, target, fmt)}
        if extra is not None:
            extra_path = path.with_name(f"{path.stem}_interests{path.suffix}")
            writers[extra_path] = lambda target: _write_frame(extra, target, fmt)
            written["interests"] = str(extra_path)
    _replace_files(writers)
    if extra is not None:
        written["interest_rows"] = len(extra)
    return written


def _create_export_folder(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next(
            (p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()),
            folder,
        )
        raise OutputError(
            f"Cannot write the export {path}: {blocking} is a file, not a folder. "
            "Choose another --out path."
        ) from None
    except OSError as exc:
        raise OutputError(
            f"Cannot create the export folder {folder}: {exc.strerror or exc}. "
            "Choose another --out path."
        ) from None


def _replace_files(writers: dict[Path, Callable[[Path], None]]) -> None:
    """Write every file to a temporary name beside it, then rename each into place.

    An existing target that is not a regular file is written in place. A temporary
    file is removed whatever stops the writing, KeyboardInterrupt included. An
    OSError becomes :class:`OutputError` naming the file.
    """
    temporaries: dict[Path, Path] = {}
    target = None
    try:
        for target, write in writers.items():
            if target.exists() and not target.is_file():
                # A device or FIFO such as /dev/stdout is written directly, because
                # a rename would replace the device node with a regular file.
                write(target)
                continue
            # A unique name keeps two exports to the same path apart. The writer
            # creates the file, so it gets the same mode as a directly written one.
            temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
            temporaries[target] = temporary
            write(temporary)
        for target, temporary in temporaries.items():
            temporary.replace(target)
    except OSError as exc:
        raise _write_failed(target, exc) from None
    finally:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)


def _write_failed(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        advice = "Free disk space or choose another --out path."
    elif isinstance(exc, PermissionError):
        advice = "Choose a folder you can write to with --out."
    else:
        advice = "Choose another --out path."
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"Writing the export {path} failed: {reason}. {advice}")


def _write_frame(frame, path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
