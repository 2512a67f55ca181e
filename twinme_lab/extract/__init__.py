"""Extraction from platform APIs: paginated, incremental, rate-limited, resumable.

:func:`extract` reads every connected participant's platforms into the workspace
and returns a :class:`RunResult` whose rows are the run log: one per participant,
platform and endpoint, with a status of ok, empty, failed, restricted or
requires_reauth. A failed or restricted endpoint has items NULL, never 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..workspace import Workspace
from . import state
from .engine import ProgressHook
from .http import RetryPolicy
from .run import EXTRACTOR_NAMES, RunResult, run_extraction
from .spotify import drop_api_duplicates

__all__ = [
    "EXTRACTOR_NAMES",
    "RetryPolicy",
    "RunResult",
    "drop_api_duplicates",
    "extract",
    "progress_bar",
    "run_extraction",
    "run_log",
]


def extract(
    workspace: Workspace,
    participant_id: str | None = None,
    platform: str | None = None,
    *,
    progress: ProgressHook | bool | None = None,
    interests: bool | None = None,
    refresh: bool = False,
) -> RunResult:
    """Extract new data of every connected participant, or of one, or one platform.

    ``progress`` True shows a tqdm bar (the notebook widget in Jupyter);
    a callable receives (participant, platform, endpoint, items) after each
    page. ``interests`` True computes the interests profile afterwards; None
    follows the workspace setting (see :mod:`twinme_lab.interests`).
    ``refresh`` re-reads lists without validators that were read recently.
    """
    from .. import interests as interests_api

    if progress is True:
        with progress_bar(enabled=True, notebook=True) as hook:
            result = run_extraction(
                workspace, participant_id, platform, progress=hook, refresh=refresh
            )
    else:
        result = run_extraction(
            workspace,
            participant_id,
            platform,
            progress=progress or None,
            refresh=refresh,
        )
    compute = interests_api.enabled(workspace) if interests is None else interests
    if compute:
        chosen = sorted({row["participant_id"] for row in result.rows})
        interests_api.compute_interests(workspace, chosen)
    return result


@contextmanager
def progress_bar(
    enabled: bool, notebook: bool = False
) -> Iterator[ProgressHook | None]:
    """Yield a progress hook drawing a tqdm bar of pages read, or None when off."""
    if not enabled:
        yield None
        return
    if notebook:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    bar = tqdm(unit="page", desc="extract", leave=False)

    def hook(participant_id: str, platform: str, endpoint: str, items: int) -> None:
        bar.set_description(f"{participant_id} {platform} {endpoint}", refresh=False)
        bar.update(1)

    try:
        yield hook
    finally:
        bar.close()


def run_log(workspace: Workspace, run_id: int | None = None) -> list[dict]:
    """Return the run log rows of one run, the latest when ``run_id`` is None."""
    with workspace.connect() as con:
        return state.run_log(con, run_id)
