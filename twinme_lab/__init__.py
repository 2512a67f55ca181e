"""Twin Me Lab: from platform data to Big Five trait reports.

The public API, for notebooks and scripts. Names load on first use, so
``import twinme_lab`` stays fast and pulls in scikit-learn, papermill or
requests-oauthlib only when a function that needs them is called.

>>> import twinme_lab as tm
>>> ws = tm.init_workspace("studies/pilot")[0]          # doctest: +SKIP
>>> tm.add_participant(ws, "P001", "Europe/Berlin")     # doctest: +SKIP
>>> tm.import_path(ws, "spotify", "my_spotify_data.zip", "P001")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from . import logs as _logs  # noqa: F401  (installs the NullHandler and filters)
from .errors import (
    InputError,
    NotFoundError,
    OutputError,
    StoreError,
    TwinMeError,
    UsageError,
    WorkspaceBusyError,
    WorkspaceError,
    WorkspaceKeyError,
)

__version__ = "0.1.0"

# Public name -> (module, attribute in that module).
_LAZY = {
    "Workspace": ("workspace", "Workspace"),
    "init_workspace": ("workspace", "init_workspace"),
    "open_workspace": ("workspace", "open_workspace"),
    "add_participant": ("participants", "add"),
    "list_participants": ("participants", "list_participants"),
    "forget": ("participants", "forget"),
    "import_path": ("imports", "import_path"),
    "compute_features": ("features", "compute_features"),
    "features_table": ("features", "features_table"),
    "feature_definitions": ("features", "feature_definitions"),
    "import_questionnaire": ("traits", "import_questionnaire"),
    "questionnaire_table": ("traits", "questionnaire_table"),
    "reliability": ("traits", "reliability"),
    "score": ("traits", "score"),
    "trait_table": ("traits", "trait_table"),
    "trait_history": ("traits", "trait_history"),
    "load_mapping": ("traits", "load_mapping"),
    "list_mappings": ("traits", "list_mappings"),
    "tune": ("traits.tuning", "tune"),
    "export_table": ("traits.norms", "export_table"),
    "run_simulation": ("simulate", "run_simulation"),
    "run_report": ("reports", "run_report"),
    "run_reports": ("reports", "run_reports"),
    "load_report_data": ("reports", "load_report_data"),
    "build_demo": ("demo", "build_demo"),
    "connect": ("oauth", "connect"),
    "disconnect": ("oauth", "disconnect"),
    "connections": ("oauth", "connections"),
    "authorized_session": ("oauth", "authorized_session"),
    # Not "extract": that name is the subpackage twinme_lab.extract.
    "extract_data": ("extract", "extract"),
    "run_log": ("extract", "run_log"),
    "rotate_key": ("rotation", "rotate_key"),
}

__all__ = [
    "InputError",
    "NotFoundError",
    "OutputError",
    "StoreError",
    "TwinMeError",
    "UsageError",
    "Workspace",
    "WorkspaceBusyError",
    "WorkspaceError",
    "WorkspaceKeyError",
    "__version__",
    "add_participant",
    "authorized_session",
    "build_demo",
    "compute_features",
    "connect",
    "connections",
    "disconnect",
    "export_table",
    "extract_data",
    "feature_definitions",
    "features_table",
    "forget",
    "import_path",
    "import_questionnaire",
    "init_workspace",
    "list_mappings",
    "list_participants",
    "load_mapping",
    "load_report_data",
    "open_workspace",
    "questionnaire_table",
    "reliability",
    "rotate_key",
    "run_log",
    "run_report",
    "run_reports",
    "run_simulation",
    "score",
    "trait_history",
    "trait_table",
    "tune",
]


def __getattr__(name: str):
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
