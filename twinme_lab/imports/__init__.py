"""Importers for platform exports (Spotify, Netflix, YouTube, Discord, LinkedIn).

Use :func:`import_path`; each platform module registers its importer with
:func:`register` when this package is imported. The framework is documented in
:mod:`twinme_lab.imports.common`.
"""

from __future__ import annotations

import importlib

from .common import (
    ImportJob,
    ImportSummary,
    KindCount,
    SourceFile,
    decode_text,
    discover,
    disk_paths,
    import_path,
    importer_for,
    numbered_json_files_sql,
    platforms,
    register,
)

__all__ = [
    "ImportJob",
    "ImportSummary",
    "KindCount",
    "SourceFile",
    "decode_text",
    "discover",
    "disk_paths",
    "import_path",
    "importer_for",
    "numbered_json_files_sql",
    "platforms",
    "register",
]

# Platform modules imported for their @register side effect. A module that is not
# written yet is skipped; any other import failure is raised.
PLATFORM_MODULES = ("spotify", "netflix", "youtube", "discord", "linkedin")


def _load_platform_modules() -> None:
    for name in PLATFORM_MODULES:
        qualified = f"{__name__}.{name}"
        try:
            importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise


_load_platform_modules()
