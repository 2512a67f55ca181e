"""Behavioural features, computed in SQL from the events tables.

Each feature module in this package declares ``FEATURES`` (a tuple of
:class:`FeatureDefinition`) and ``SQL``, one query that returns the columns
``participant_id, feature, value, n_obs, window_start, window_end`` with at most
one row per participant and feature. The query reads the participants to compute
from the temporary table ``feature_scope (participant_id, timezone)``. A module
may also declare ``SETUP_SQL``, statements run before ``SQL`` that create the
temporary tables named in ``TEMP_TABLES`` (dropped afterwards), and
``build_sql(names)``, returning the setup statements and the query for only the
named features. A module without ``build_sql`` runs ``SQL`` and its rows of
features not requested are dropped.

:func:`compute_features` runs every module that declares a requested feature
(all of them by default) and sets a value to NULL where it rests on fewer than
the feature's minimum observations. A requested feature that a participant has
no data for gets a NULL row with ``n_obs`` 0. The chosen participants' previous
rows of the requested features are replaced in one transaction. Floating-point
sums in the module queries use ``ORDER BY`` inside the aggregate, so a rerun on
the same data gives the same bits.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

import pandas as pd

from .. import participants
from ..errors import UsageError
from ..store import transaction
from ..workspace import Workspace

log = logging.getLogger(__name__)

# Feature modules, imported in this order. A name whose module does not exist yet
# is skipped.
MODULE_NAMES = (
    "listening",
    "viewing",
    "youtube",
    "discord",
    "discord_api",
    "linkedin",
    "communication",
    "github",
    "reddit",
    "twitch",
    "spotify_api",
)

RESULT_COLUMNS = (
    "participant_id",
    "feature",
    "value",
    "n_obs",
    "window_start",
    "window_end",
)


@dataclass(frozen=True)
class FeatureDefinition:
    """A feature's name, meaning, unit, source tables and minimum observations.

    ``min_obs`` is the number of observations (plays, viewings, ...) below which
    the value is stored as NULL.
    """

    name: str
    description: str
    unit: str
    source_tables: tuple[str, ...]
    min_obs: int = 1


def _load_modules() -> list[ModuleType]:
    found = []
    for name in MODULE_NAMES:
        qualified = f"{__name__}.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:
                continue
            raise
        found.append(module)
    return found


def modules() -> list[ModuleType]:
    """Return the feature modules present, in registry order."""
    return _load_modules()


def definitions() -> dict[str, FeatureDefinition]:
    """Return every declared feature by name, checking that names are unique."""
    result: dict[str, FeatureDefinition] = {}
    for module in _load_modules():
        for definition in module.FEATURES:
            if definition.name in result:
                raise ValueError(
                    f"Feature {definition.name} is declared twice (again in "
                    f"{module.__name__})."
                )
            result[definition.name] = definition
    return result


def feature_definitions() -> pd.DataFrame:
    """Return the declared features as a DataFrame, one row per feature."""
    rows = [
        {
            "feature": d.name,
            "description": d.description,
            "unit": d.unit,
            "source_tables": ", ".join(d.source_tables),
            "min_obs": d.min_obs,
        }
        for d in definitions().values()
    ]
    columns = ["feature", "description", "unit", "source_tables", "min_obs"]
    return pd.DataFrame(rows, columns=columns)


def _scope(con, participant_ids: Iterable[str] | None) -> list[str]:
    if participant_ids is None:
        rows = con.execute(
            "SELECT participant_id FROM participants ORDER BY participant_id"
        ).fetchall()
        return [pid for (pid,) in rows]
    chosen = sorted(set(participant_ids))
    for pid in chosen:
        participants.require(con, pid)
    return chosen


def _requested(features: Iterable[str] | None) -> list[str] | None:
    """Check requested feature names; return them in declared order, or None."""
    if features is None:
        return None
    if isinstance(features, str):
        raise UsageError("features must be a list of feature names, not one string.")
    wanted = set(features)
    declared = definitions()
    if not wanted:
        raise UsageError(
            "features is an empty list; pass at least one feature name, or None "
            "for every feature."
        )
    unknown = sorted(wanted - set(declared))
    if unknown:
        raise UsageError(
            f"Unknown feature {', '.join(map(repr, unknown))}. Valid names: "
            f"{', '.join(declared)} (twinme_lab.feature_definitions() describes "
            "each)."
        )
    return [name for name in declared if name in wanted]


def _module_sql(
    module: ModuleType, names: list[str] | None
) -> tuple[tuple[str, ...], str]:
    """Return a module's setup statements and query for ``names`` (None: all)."""
    declared = [d.name for d in module.FEATURES]
    build = getattr(module, "build_sql", None)
    if names is None or set(declared) <= set(names) or build is None:
        return tuple(getattr(module, "SETUP_SQL", ())), module.SQL
    return build([name for name in declared if name in names])


def _collect_module(con, module: ModuleType, names: list[str] | None) -> None:
    """Append one module's rows to ``feature_results``, checking their shape.

    With ``names``, only rows of those features are appended.
    """
    name = module.__name__
    setup, sql = _module_sql(module, names)
    for statement in setup:
        con.execute(statement)
    cursor = con.execute(f"SELECT * FROM ({sql}) LIMIT 0")
    columns = tuple(d[0] for d in cursor.description)
    if columns != RESULT_COLUMNS:
        raise ValueError(
            f"{name}.SQL returns columns {columns}; expected {RESULT_COLUMNS}."
        )
    con.execute("DELETE FROM module_results")
    con.execute(f"INSERT INTO module_results {sql}")
    declared = [d.name for d in module.FEATURES]
    undeclared = con.execute(
        "SELECT DISTINCT feature FROM module_results "
        "WHERE feature NOT IN (SELECT unnest(?::VARCHAR[])) ORDER BY feature",
        [declared],
    ).fetchall()
    if undeclared:
        raise ValueError(f"{name}.SQL returns undeclared features {undeclared}.")
    doubled = con.execute(
        "SELECT feature FROM module_results GROUP BY participant_id, feature "
        "HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    if doubled:
        raise ValueError(
            f"{name}.SQL returns feature {doubled[0][0]!r} twice for one participant."
        )
    con.execute(
        "INSERT INTO feature_results SELECT * FROM module_results "
        "WHERE feature IN (SELECT feature FROM feature_catalog)"
    )
    for table in getattr(module, "TEMP_TABLES", ()):
        con.execute(f"DROP TABLE IF EXISTS temp.{table}")


def compute_features(
    workspace: Workspace,
    participant_ids: Iterable[str] | None = None,
    features: Iterable[str] | None = None,
) -> dict:
    """Compute features for the given participants (default: all enrolled).

    ``features`` names the features to compute (default: every declared one).
    Only modules that declare one of them run. Only the chosen participants'
    rows of those features are replaced, and stored rows of other features stay
    as they are. An unknown name raises UsageError before anything is written.

    Returns a summary: the participants, the modules run, and per computed feature
    how many participants got a value and how many got NULL.
    """
    if isinstance(participant_ids, str):
        raise UsageError("participant_ids must be a list of ids, not one string.")
    requested = _requested(features)
    all_definitions = definitions()
    names = requested if requested is not None else list(all_definitions)
    registry = [
        module
        for module in _load_modules()
        if any(d.name in names for d in module.FEATURES)
    ]
    minimums = [all_definitions[n].min_obs for n in names]
    with workspace.connect() as con:
        chosen = _scope(con, participant_ids)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE feature_scope AS "
            "SELECT participant_id, timezone FROM participants "
            "WHERE participant_id IN (SELECT unnest(?::VARCHAR[]))",
            [chosen],
        )
        for table in ("feature_results", "module_results"):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} (participant_id VARCHAR, "
                "feature VARCHAR, value DOUBLE, n_obs BIGINT, "
                "window_start TIMESTAMPTZ, window_end TIMESTAMPTZ)"
            )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE feature_catalog AS "
            "SELECT unnest(?::VARCHAR[]) AS feature, unnest(?::BIGINT[]) AS min_obs",
            [names, minimums],
        )
        for module in registry:
            _collect_module(con, module, requested)

        # A full run also removes stored rows of features no longer declared.
        only_requested = (
            ""
            if requested is None
            else " AND feature IN (SELECT feature FROM feature_catalog)"
        )
        with transaction(con):
            con.execute(
                "DELETE FROM features WHERE participant_id IN "
                f"(SELECT participant_id FROM feature_scope){only_requested}"
            )
            con.execute(
                """
                INSERT INTO features (participant_id, feature, value, n_obs,
                                      window_start, window_end, computed_at)
                SELECT s.participant_id, c.feature,
                       CASE WHEN coalesce(r.n_obs, 0) >= c.min_obs
                            THEN r.value END,
                       coalesce(r.n_obs, 0), r.window_start, r.window_end, now()
                FROM feature_scope s
                CROSS JOIN feature_catalog c
                LEFT JOIN feature_results r
                  ON r.participant_id = s.participant_id AND r.feature = c.feature
                """
            )
            counts_rows = con.execute(
                "SELECT feature, count(value), count(*) - count(value) FROM features "
                "WHERE participant_id IN (SELECT participant_id FROM feature_scope)"
                f"{only_requested} GROUP BY feature ORDER BY feature"
            ).fetchall()
            total = sum(v + n for _, v, n in counts_rows)
            audit_counts = {"participants": len(chosen), "rows": total}
            if requested is not None:
                audit_counts["features"] = requested
            workspace.audit(con, "features", None, audit_counts)
        for table in (
            "feature_scope",
            "feature_results",
            "module_results",
            "feature_catalog",
        ):
            con.execute(f"DROP TABLE {table}")

    counts = {name: {"value": 0, "null": 0} for name in names}
    for name, with_value, without in counts_rows:
        counts[name] = {"value": with_value, "null": without}
    log.info("computed %d feature rows for %d participants", total, len(chosen))
    return {
        "participants": chosen,
        "modules": [m.__name__.rsplit(".", 1)[-1] for m in registry],
        "features": counts,
        "rows": total,
    }


def features_table(
    workspace: Workspace, participant_id: str | None = None
) -> pd.DataFrame:
    """Return stored feature rows, ordered by participant and feature."""
    sql = (
        "SELECT participant_id, feature, value, n_obs, window_start, window_end, "
        "computed_at FROM features"
    )
    return participants.read_rows(
        workspace, sql, "participant_id, feature", participant_id
    )
