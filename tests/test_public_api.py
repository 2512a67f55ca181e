"""The curated public API in twinme_lab.__init__."""

from __future__ import annotations

import subprocess
import sys

import twinme_lab

EXPECTED = {
    "InputError",
    "NotFoundError",
    "OutputError",
    "StoreError",
    "TwinMeError",
    "UsageError",
    "WorkspaceBusyError",
    "WorkspaceError",
    "WorkspaceKeyError",
    "Workspace",
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
}


def test_all_lists_exactly_the_public_names():
    assert set(twinme_lab.__all__) == EXPECTED


def test_every_public_name_resolves():
    for name in twinme_lab.__all__:
        assert getattr(twinme_lab, name) is not None, name


def test_errors_share_one_root():
    for name in twinme_lab.__all__:
        value = getattr(twinme_lab, name)
        if isinstance(value, type) and name.endswith("Error"):
            assert issubclass(value, twinme_lab.TwinMeError), name


def test_import_stays_light():
    code = (
        "import sys, twinme_lab\n"
        "heavy = [m for m in ('sklearn', 'papermill', 'plotly', 'requests_oauthlib')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_lazy_table_matches_all():
    lazy = set(twinme_lab._LAZY)
    assert lazy <= set(twinme_lab.__all__)


def test_public_names_do_not_shadow_subpackages():
    import pkgutil

    submodules = {info.name for info in pkgutil.iter_modules(twinme_lab.__path__)}
    assert not submodules & set(twinme_lab._LAZY)
