"""Trait mappings: versioned JSON files of signed feature weights per trait.

The package ships ``twinme_lab/data/mapping_*.json``; tuned mappings are written
to a workspace's ``mappings/`` folder. Every file has a ``version`` string, the
five ``traits`` with their weighted features, the ``sources`` those weights cite,
``reference_values`` (mean and SD per feature) for standardizing a small cohort,
and ``standardization.cohort_min_participants``.

A weight has a status: ``published`` (with a source key into ``sources``),
``exploratory`` (no published source, so its weight must be 0) or ``tuned`` (set
by fitting to questionnaire scores).
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from pathlib import Path

import pandas as pd

from ..errors import InputError, NotFoundError
from ..workspace import Workspace

TRAITS = (
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
)
DEFAULT_VERSION = "default-1"
SETTING_KEY = "mapping_version"
STATUSES = ("published", "exploratory", "tuned")


def _package_files() -> list[tuple[str, str]]:
    root = resources.files("twinme_lab.data")
    found = []
    for entry in root.iterdir():
        if entry.name.startswith("mapping_") and entry.name.endswith(".json"):
            found.append((f"twinme_lab/data/{entry.name}", entry.read_text()))
    return sorted(found)


def _workspace_files(workspace: Workspace | None) -> list[tuple[str, str]]:
    if workspace is None:
        return []
    folder = workspace.root / "mappings"
    if not folder.is_dir():
        return []
    return [(str(p), p.read_text()) for p in sorted(folder.glob("*.json"))]


def _check_number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where} must be a number, not {value!r}.")
    if not math.isfinite(value):
        raise InputError(f"{where} must be finite, not {value!r}.")
    return float(value)


def validate_mapping(doc: dict, origin: str) -> None:
    """Check a mapping document; raise :class:`InputError` naming the first fault."""
    version = doc.get("version")
    if not isinstance(version, str) or not version:
        raise InputError(f"Mapping {origin} has no 'version' string.")
    where = f"mapping {version} ({origin})"
    traits = doc.get("traits")
    if not isinstance(traits, dict) or sorted(traits) != sorted(TRAITS):
        raise InputError(f"In {where}, 'traits' must list exactly {', '.join(TRAITS)}.")
    sources = doc.get("sources", {})
    for trait, entries in traits.items():
        seen = set()
        for entry in entries:
            feature = entry.get("feature")
            label = f"{where}, {trait}/{feature}"
            if not isinstance(feature, str) or feature in seen:
                raise InputError(f"In {label}: missing or repeated feature name.")
            seen.add(feature)
            weight = _check_number(entry.get("weight"), f"In {label}, 'weight'")
            status = entry.get("status")
            if status not in STATUSES:
                raise InputError(
                    f"In {label}, 'status' must be one of {', '.join(STATUSES)}."
                )
            if status == "exploratory" and weight != 0:
                raise InputError(
                    f"In {label}, an exploratory weight has no published source and "
                    "must be 0 until tuning sets it (status 'tuned')."
                )
            if status == "published" and entry.get("source") not in sources:
                raise InputError(
                    f"In {label}, a published weight needs a 'source' that names an "
                    "entry of 'sources'."
                )
    minimum = doc.get("standardization", {}).get("cohort_min_participants")
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 2:
        raise InputError(
            f"In {where}, standardization.cohort_min_participants must be an "
            "integer of at least 2."
        )
    for feature, ref in doc.get("reference_values", {}).get("features", {}).items():
        _check_number(ref.get("mean"), f"In {where}, reference mean of {feature}")
        sd = _check_number(ref.get("sd"), f"In {where}, reference sd of {feature}")
        if sd <= 0:
            raise InputError(f"In {where}, reference sd of {feature} must be > 0.")


def _parse(origin: str, text: str) -> dict:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"Mapping file {origin} is not valid JSON: {exc}.") from None
    if not isinstance(doc, dict):
        raise InputError(f"Mapping file {origin} must hold a JSON object.")
    validate_mapping(doc, origin)
    doc["file"] = origin
    doc["digest"] = hashlib.sha256(text.encode()).hexdigest()
    return doc


def _all_mappings(workspace: Workspace | None) -> list[tuple[str, dict]]:
    found = []
    for kind, files in (
        ("package", _package_files()),
        ("workspace", _workspace_files(workspace)),
    ):
        for origin, text in files:
            found.append((kind, _parse(origin, text)))
    return found


def default_version(workspace: Workspace | None = None) -> str:
    """Return the workspace's chosen mapping version, else the shipped default."""
    if workspace is not None:
        with workspace.connect() as con:
            row = con.execute(
                "SELECT value FROM workspace_settings WHERE key = ?", [SETTING_KEY]
            ).fetchone()
        if row:
            return row[0]
    return DEFAULT_VERSION


def load_mapping(
    version: str | None = None, workspace: Workspace | None = None
) -> dict:
    """Return a mapping document by version (default: :func:`default_version`).

    The document gains ``file`` (where it was read) and ``digest`` (sha256 of the
    file's text). A workspace mapping with the same version as a package one wins.
    """
    wanted = version or default_version(workspace)
    chosen = None
    for _, doc in _all_mappings(workspace):
        if doc["version"] == wanted:
            chosen = doc
    if chosen is None:
        known = ", ".join(sorted({d["version"] for _, d in _all_mappings(workspace)}))
        raise NotFoundError(
            f"No trait mapping with version {wanted!r}; available: {known}. "
            "'twinme-lab mappings list' describes each."
        )
    return chosen


def list_mappings(workspace: Workspace | None = None) -> pd.DataFrame:
    """Return the available mappings: version, origin, file and weight counts."""
    rows = []
    for kind, doc in _all_mappings(workspace):
        entries = [e for es in doc["traits"].values() for e in es]
        rows.append(
            {
                "version": doc["version"],
                "origin": kind,
                "file": doc["file"],
                "weights_nonzero": sum(e["weight"] != 0 for e in entries),
                "weights_exploratory": sum(
                    e["status"] == "exploratory" for e in entries
                ),
                "description": doc.get("description", ""),
            }
        )
    columns = [
        "version",
        "origin",
        "file",
        "weights_nonzero",
        "weights_exploratory",
        "description",
    ]
    return pd.DataFrame(rows, columns=columns)


def mapping_path(workspace: Workspace, version: str) -> Path:
    """Return where a tuned mapping of this version is saved in a workspace."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in version)
    return workspace.root / "mappings" / f"mapping_{safe}.json"
