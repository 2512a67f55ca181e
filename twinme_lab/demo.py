"""Build the demo workspace from the bundled samples and write its trait reports.

:func:`build_demo` creates a fresh encrypted workspace (by default
``data/workspace-demo``), enrols the participants listed in
``data/samples/demo.json`` with their time zones, imports their Spotify, Netflix,
YouTube, Discord and LinkedIn exports and IPIP-50 answers, then connects the
manifest's sandbox participants to the local sandbox provider (started in this
process on 127.0.0.1) and extracts their API data. It computes features, scores
traits and writes one report per participant. Everything runs offline: the only
sockets are the sandbox's and the OAuth callback servers', all on loopback.

A folder that already holds a demo workspace is replaced; any other non-empty
folder is rejected, so a real study can never be overwritten by the demo.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import keys, participants
from .errors import NotFoundError, UsageError
from .reports.batch import BatchResult, run_reports
from .workspace import META_NAME, init_workspace

log = logging.getLogger(__name__)

DEFAULT_DEMO_WORKSPACE = Path("data") / "workspace-demo"
MANIFEST_NAME = "demo.json"

# Written into the demo workspace; only a folder holding it may be replaced.
MARKER_NAME = "twinme-demo.json"

# Seconds one sandbox connection may wait for its OAuth callback.
SANDBOX_CONNECT_TIMEOUT = 30.0


@dataclass
class DemoResult:
    """The demo's workspace, key, imports, connections, reports and timings.

    ``connections`` lists the sandbox connections without tokens, and
    ``extraction`` is the summary of the sandbox extraction run.
    """

    workspace: Path
    key_origin: str
    key_file: Path | None
    imports: list[dict] = field(default_factory=list)
    reports: BatchResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    connections: list[dict] = field(default_factory=list)
    extraction: dict | None = None

    def as_dict(self) -> dict:
        return {
            "workspace": str(self.workspace),
            "key": self.key_origin,
            "key_file": str(self.key_file) if self.key_file else None,
            "imports": self.imports,
            "connections": self.connections,
            "extraction": self.extraction,
            "reports": self.reports.as_dict() if self.reports else None,
            "seconds": self.seconds,
        }


def samples_dir() -> Path:
    """Return ``data/samples`` of the source tree."""
    folder = Path(__file__).resolve().parents[1] / "data" / "samples"
    if not (folder / MANIFEST_NAME).is_file():
        raise NotFoundError(
            f"The demo samples ({folder / MANIFEST_NAME}) are missing; the demo runs "
            "from a clone of the repository."
        )
    return folder


def load_manifest(folder: Path) -> dict:
    """Read the demo manifest, naming the file when it is not valid."""
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["participants"]
        sandbox_people = manifest.get("sandbox", {}).get("participants", [])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path} is not a valid demo manifest: {exc}") from None
    for person in sandbox_people:
        missing = [
            name for name in ("id", "sandbox_user", "platforms") if name not in person
        ]
        if missing:
            raise UsageError(
                f"{path} is not a valid demo manifest: sandbox participant "
                f"{person.get('id', '(no id)')} is missing {', '.join(missing)}."
            )
    return manifest


def clear_demo_folder(root: Path) -> None:
    """Delete an earlier demo workspace at ``root``, with the key file it created.

    Raises :class:`UsageError` if ``root`` is a non-empty folder that is not a
    demo workspace.
    """
    if not root.exists():
        return
    if not root.is_dir():
        raise UsageError(f"{root} is a file, not a folder; choose another --workspace.")
    marker = root / MARKER_NAME
    if not marker.is_file():
        if any(root.iterdir()):
            raise UsageError(
                f"{root} is not empty and is not a demo workspace; the demo only "
                "replaces its own workspaces. Choose another --workspace."
            )
        return
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        recorded = {}
    key_file = recorded.get("key_file")
    meta_path = root / META_NAME
    if key_file and meta_path.is_file():
        # Only the key file init wrote for this very workspace is removed.
        workspace_id = json.loads(meta_path.read_text()).get("workspace_id", "")
        expected = keys.default_key_file(workspace_id)
        if workspace_id and Path(key_file) == expected:
            expected.unlink(missing_ok=True)
    shutil.rmtree(root)


def build_demo(
    workspace: str | os.PathLike | None = None, jobs: int | None = None
) -> DemoResult:
    """Create the demo workspace, import the samples, score and write the reports."""
    from . import features, traits
    from .imports import import_path

    folder = samples_dir()
    manifest = load_manifest(folder)
    root = Path(workspace) if workspace else DEFAULT_DEMO_WORKSPACE
    clear_demo_folder(root)

    timings: dict[str, float] = {}
    started = time.monotonic()
    ws, origin = init_workspace(root)
    key_file = None
    if not (os.environ.get(keys.KEY_ENV) or os.environ.get(keys.KEY_FILE_ENV)):
        key_file = keys.default_key_file(ws.workspace_id)
    (root / MARKER_NAME).write_text(
        json.dumps(
            {"demo": True, "key_file": str(key_file) if key_file else None}, indent=2
        )
        + "\n",
        encoding="utf-8",
    )
    timings["init"] = time.monotonic() - started

    started = time.monotonic()
    imported = []
    for person in manifest["participants"]:
        participant_id = person["id"]
        participants.add(ws, participant_id, person.get("timezone"), "demo")
        for entry in person.get("imports", []):
            summary = import_path(
                ws,
                entry["platform"],
                folder / entry["path"],
                participant_id,
                **entry.get("options", {}),
            )
            imported.append(
                {
                    "participant": participant_id,
                    "platform": entry["platform"],
                    "path": entry["path"],
                    "summary": _summary_dict(summary),
                }
            )
    for entry in manifest.get("questionnaires", []):
        traits.import_questionnaire(ws, folder / entry["path"], entry["instrument"])
    timings["import"] = time.monotonic() - started

    connections: list[dict] = []
    extraction = None
    plan = manifest.get("sandbox")
    if plan:
        started = time.monotonic()
        connections, extraction = connect_sandbox_participants(ws, plan)
        timings["sandbox"] = time.monotonic() - started

    started = time.monotonic()
    features.compute_features(ws)
    traits.score(ws)
    timings["score"] = time.monotonic() - started

    started = time.monotonic()
    report_ids = [p["id"] for p in manifest["participants"]]
    if plan:
        report_ids += [p["id"] for p in plan["participants"]]
    reports = run_reports(ws, report_ids, jobs=jobs, force=True)
    timings["reports"] = time.monotonic() - started
    timings = {step: round(seconds, 2) for step, seconds in timings.items()}
    log.info("demo workspace built in %s", root)
    return DemoResult(
        root, origin, key_file, imported, reports, timings, connections, extraction
    )


def connect_sandbox_participants(ws, plan: dict) -> tuple[list[dict], dict]:
    """Enrol the sandbox participants, connect them and extract their API data.

    ``plan`` is the manifest's ``sandbox`` entry: a ``seed`` and ``participants``,
    each with an ``id``, a ``timezone``, the ``sandbox_user`` index who consents
    and the ``platforms`` to connect. The sandbox runs in this process with
    auto-consent, its variables (and a free loopback callback port per platform)
    are set only while connecting and extracting, and it is stopped even when a
    step fails. The study opts in to the interests profile, so the extraction
    computes it. Returns the connections (without tokens) and the run summary.
    """
    from . import interests, oauth, platforms, sandbox
    from .extract import extract

    chosen = sorted({name for p in plan["participants"] for name in p["platforms"]})
    interests.set_enabled(ws, True)
    connected = []
    handle = sandbox.serve(
        port=0,
        auto_consent=True,
        deliver_callback=True,
        seed=plan.get("seed", 0),
    )
    try:
        variables = dict(handle.env())
        for name in chosen:
            port = free_loopback_port()
            variables[platforms.get(name).env_prefix() + "REDIRECT_URI"] = (
                f"http://127.0.0.1:{port}/oauth/callback"
            )
        with temporary_environment(variables):
            for person in plan["participants"]:
                participant_id = person["id"]
                participants.add(
                    ws, participant_id, person.get("timezone"), "demo-sandbox"
                )
                for name in person["platforms"]:
                    handle.set_consent_user(name, person["sandbox_user"])
                    record = oauth.connect(
                        ws,
                        name,
                        participant_id,
                        open_url=oauth.sandbox_browser(),
                        timeout=SANDBOX_CONNECT_TIMEOUT,
                    )
                    connected.append(
                        {
                            "participant": participant_id,
                            "platform": name,
                            "status": record["status"],
                            "origin": record["origin"],
                        }
                    )
            result = extract(ws)
    finally:
        handle.stop()
    summary = result.summary()
    if summary["problems"]:
        log.warning(
            "demo extraction finished with problems: %s",
            "; ".join(summary["problems"]),
        )
    return connected, summary


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def temporary_environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block and restore the old values after."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _summary_dict(summary) -> dict:
    if hasattr(summary, "as_dict"):
        return summary.as_dict()
    if hasattr(summary, "to_dict"):
        return summary.to_dict()
    return {"summary": str(summary)}
