"""One extraction run over every connected participant and platform.

A run walks the connections in order (participant, then platform) and each
platform's endpoints in the order its extractor lists them, under one
:class:`RateLimiter`, so a per-app limit is shared by the whole cohort. An endpoint
that fails is logged and the run moves on. A token refused after one refresh marks
the connection ``requires_reauth``, and its remaining endpoints are skipped.
"""

from __future__ import annotations

import importlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from .. import participants, platforms
from ..errors import EXIT_OK, EXIT_PARTIAL, NotFoundError, TwinMeError
from ..oauth.errors import ReauthRequired
from ..platforms import config
from ..store import transaction
from ..workspace import Workspace
from . import state
from .engine import EndpointEnv, ProgressHook, read_endpoint
from .http import Budgeting, Requester, RetryPolicy
from .limits import Clock, RateLimiter
from .spec import EndpointSpec

log = logging.getLogger(__name__)

# Extractor modules under twinme_lab.extract, by platform name.
EXTRACTOR_NAMES = (
    "spotify",
    "github",
    "discord",
    "linkedin",
    "youtube",
    "reddit",
    "twitch",
)

# Seconds a snapshot endpoint whose platform sends no ETag or Last-Modified is
# not read again (top lists, followed artists, guilds). NOTE: six hours is a
# judgement, not a platform rule; Spotify does not document how often it
# recomputes top items.
SNAPSHOT_MAX_AGE = 6 * 3600.0

SessionFactory = Callable[[Workspace, str, str], Any]


def extractor(name: str) -> ModuleType:
    """Return the extractor module of a platform."""
    if name not in EXTRACTOR_NAMES:
        raise NotFoundError(
            f"No extractor for platform {name!r}; choose one of "
            f"{', '.join(EXTRACTOR_NAMES)}."
        )
    return importlib.import_module(f"{__package__}.{name}")


@dataclass
class RunResult:
    """The outcome of :func:`run_extraction`: the run id and its run log rows."""

    run_id: int
    rows: list[dict] = field(default_factory=list)

    @property
    def problems(self) -> list[dict]:
        return [r for r in self.rows if r["status"] not in state.OK_STATUSES]

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.problems else EXIT_OK

    def summary(self) -> dict:
        statuses: dict[str, int] = {}
        for row in self.rows:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        return {
            "run_id": self.run_id,
            "endpoints": len(self.rows),
            "statuses": statuses,
            "items": sum(r["items"] or 0 for r in self.rows),
            "requests": sum(r["requests"] for r in self.rows),
            "not_modified": sum(r["not_modified"] for r in self.rows),
            "rate_limited": sum(r["rate_limited"] for r in self.rows),
            "problems": [
                f"{r['participant_id']} {r['platform']} {r['endpoint']}: {r['status']}"
                for r in self.problems
            ],
            "exit_code": self.exit_code,
        }


def default_session(workspace: Workspace, participant_id: str, platform: str):
    from ..oauth import authorized_session

    return authorized_session(workspace, participant_id, platform)


def _connections(
    workspace: Workspace, participant_id: str | None, platform: str | None
) -> list[tuple[str, str, str | None]]:
    """Return (participant, platform, granted scopes) of usable connections."""
    from ..oauth import records

    with workspace.connect() as con:
        if participant_id is not None:
            participants.require(con, participant_id)
        found = records.load_all(con, participant_id)
    chosen = [
        (r.participant_id, r.platform, r.granted_scopes)
        for r in found
        # Connections needing reconnection are listed so the run reports them.
        if r.status in (records.CONNECTED, records.REQUIRES_REAUTH)
        and (platform is None or r.platform == platform)
        and r.platform in EXTRACTOR_NAMES
    ]
    if not chosen and (participant_id or platform):
        subject = (
            f"participant {participant_id}" if participant_id else "any participant"
        )
        where = f" on {platform}" if platform else ""
        raise NotFoundError(
            f"No working connection for {subject}{where}; run 'twinme-lab connections' "
            "to see their status, and 'twinme-lab connect' to add one."
        )
    return chosen


def _budgeting(
    platform: platforms.Platform,
    participant_id: str,
    override: platforms.RateLimit | None = None,
) -> Budgeting:
    limit = override or platform.rate_limit
    if limit.counted_per == "app":
        key: tuple = (platform.name, "app")
    else:
        key = (platform.name, "token", participant_id)
    return Budgeting(key, limit.requests, limit.per_seconds)


def _skipped_row(
    run_id: int,
    participant_id: str,
    platform: str,
    spec: EndpointSpec,
    status: str,
    error: str,
) -> dict:
    return {
        "run_id": run_id,
        "participant_id": participant_id,
        "platform": platform,
        "endpoint": spec.name,
        "status": status,
        "pages": 0,
        "items": None,
        "items_stored": 0,
        "requests": 0,
        "not_modified": 0,
        "unchanged": 0,
        "rate_limited": 0,
        "retries": 0,
        "duration_s": 0.0,
        "window_start": None,
        "note": spec.note,
        "error": error,
        "finished_at": datetime.now(UTC),
    }


def _identity(
    db: state.RunDatabase, participant_id: str, platform: str, spec: EndpointSpec
) -> dict:
    """Return the stored identity record, for paths that need the account name."""
    with db.connect() as con:
        row = con.execute(
            "SELECT payload FROM api_records WHERE participant_id = ? AND "
            "platform = ? AND endpoint = ? ORDER BY last_seen_at DESC LIMIT 1",
            [participant_id, platform, spec.name],
        ).fetchone()
    if row is None:
        return {}
    import json

    return json.loads(row[0])


def extract_connection(
    db: state.RunDatabase,
    run_id: int,
    participant_id: str,
    platform_name: str,
    granted_scopes: str | None,
    session: Any,
    limiter: RateLimiter,
    policy: RetryPolicy,
    progress: ProgressHook | None = None,
    rng: random.Random | None = None,
    rate_limit: platforms.RateLimit | None = None,
    max_age: float | None = SNAPSHOT_MAX_AGE,
) -> list[dict]:
    """Read every endpoint of one connection and write its run log rows."""
    module = extractor(platform_name)
    platform = platforms.get(platform_name)
    resolved = config.resolve(platform, require_credentials=False)
    granted = set((granted_scopes or "").split())
    requester = Requester(
        session=session,
        limiter=limiter,
        budgeting=_budgeting(platform, participant_id, rate_limit),
        policy=policy,
        rate_limit_hook=getattr(module, "rate_limit_wait", None),
        rng=rng or random.Random(),
    )
    rows: list[dict] = []
    identity: dict = {}
    reauth: str | None = None
    for spec in module.ENDPOINTS:
        if spec.optional_scope and spec.optional_scope not in granted:
            continue
        if reauth is not None:
            row = _skipped_row(
                run_id, participant_id, platform_name, spec, "requires_reauth", reauth
            )
            with db.connect() as con, transaction(con):
                state.write_log(con, row)
        else:
            source = _source_endpoint(platform, module, spec)
            env = EndpointEnv(
                db=db,
                run_id=run_id,
                participant_id=participant_id,
                platform=platform_name,
                api_url=resolved.api_url,
                requester=requester,
                page_size=source.page_size,
                pagination=source.pagination,
                path=source.path,
                base_params=dict(source.params),
                cursor_param=source.cursor_param,
                page_size_param=source.page_size_param,
                identity=identity,
                progress=progress,
                max_age=max_age,
            )
            row = read_endpoint(env, spec)
            if spec.name == getattr(module, "IDENTITY_ENDPOINT", None):
                identity.update(_identity(db, participant_id, platform_name, spec))
            if row["status"] == "requires_reauth":
                reauth = row["error"]
                _mark_reauth(db.workspace, participant_id, platform_name, reauth)
        rows.append(row)
    return rows


def _record_unopened(
    db: state.RunDatabase,
    run_id: int,
    participant_id: str,
    platform: str,
    scopes: str | None,
    status: str,
    error: str,
) -> list[dict]:
    granted = set((scopes or "").split())
    rows = [
        _skipped_row(run_id, participant_id, platform, spec, status, error)
        for spec in extractor(platform).ENDPOINTS
        if not spec.optional_scope or spec.optional_scope in granted
    ]
    with db.connect() as con, transaction(con):
        for row in rows:
            state.write_log(con, row)
    return rows


def _source_endpoint(
    platform: platforms.Platform, module: ModuleType, spec: EndpointSpec
) -> platforms.Endpoint:
    """Return the platform module's endpoint a spec reads.

    The identity endpoint may be declared only as the platform's identity_path.
    """
    try:
        return platform.endpoint(spec.source_name)
    except KeyError:
        if spec.name != getattr(module, "IDENTITY_ENDPOINT", None):
            raise
        return platforms.Endpoint(spec.name, platform.identity_path, "none")


def _mark_reauth(
    workspace: Workspace, participant_id: str, platform: str, reason: str
) -> None:
    from ..oauth import records

    records.set_status(
        workspace, participant_id, platform, records.REQUIRES_REAUTH, reason
    )


def run_extraction(
    workspace: Workspace,
    participant_id: str | None = None,
    platform: str | None = None,
    *,
    progress: ProgressHook | None = None,
    session_factory: SessionFactory | None = None,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    rate_limits: dict[str, platforms.RateLimit] | None = None,
    refresh: bool = False,
) -> RunResult:
    """Extract every connected participant's data and return the run's log rows.

    ``participant_id`` and ``platform`` narrow the run. ``session_factory`` returns
    a requests-like session for (workspace, participant, platform); it defaults to
    the OAuth layer's authorized session, which refreshes tokens itself.
    ``rate_limits`` replaces a platform module's documented limit, for an app
    granted a higher quota or a sandbox set to a lower one. ``refresh`` re-reads
    snapshot endpoints that send no validators even when read recently.
    """
    if platform is not None:
        extractor(platform)
    if participant_id is not None:
        participants.validate_id(participant_id)
    chosen = _connections(workspace, participant_id, platform)
    factory = session_factory or default_session
    limiter = RateLimiter(clock=clock or Clock())
    policy = policy or RetryPolicy()

    db = state.RunDatabase(workspace)
    try:
        with db.connect() as con:
            run_id = state.start_run(con)
        result = RunResult(run_id)
        for pid, name, scopes in chosen:
            rows = _extract_one(
                db,
                run_id,
                pid,
                name,
                scopes,
                factory,
                limiter,
                policy,
                progress,
                (rate_limits or {}).get(name),
                None if refresh else SNAPSHOT_MAX_AGE,
            )
            result.rows.extend(rows)
            if any(row["status"] in ("ok", "empty") for row in rows):
                with db.connect() as con:
                    con.execute(
                        "UPDATE connections SET last_extraction_at = now() "
                        "WHERE participant_id = ? AND platform = ?",
                        [pid, name],
                    )
        with db.connect() as con, transaction(con):
            state.finish_run(con, run_id, result.exit_code)
            workspace.audit(
                con, "extract", participant_id, result.summary()["statuses"]
            )
    finally:
        db.close()
    return result


def _extract_one(
    db,
    run_id,
    participant_id,
    platform,
    scopes,
    factory,
    limiter,
    policy,
    progress,
    rate_limit,
    max_age,
) -> list[dict]:
    try:
        session = factory(db.workspace, participant_id, platform)
    except TwinMeError as exc:
        # One connection that cannot open (revoked, undecryptable) stops only its
        # own endpoints.
        status = "requires_reauth" if isinstance(exc, ReauthRequired) else "failed"
        return _record_unopened(
            db, run_id, participant_id, platform, scopes, status, str(exc)
        )
    try:
        return extract_connection(
            db,
            run_id,
            participant_id,
            platform,
            scopes,
            session,
            limiter,
            policy,
            progress,
            rate_limit=rate_limit,
            max_age=max_age,
        )
    finally:
        close = getattr(session, "close", None)
        if close is not None:
            close()
