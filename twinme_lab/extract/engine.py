"""Reading one endpoint of one participant: the page walks and their commits.

Each page's items, its validators and the endpoint's cursor are written in one
transaction, so a process killed at any point leaves either the whole page or
none of it. The database is opened only to write a page, never while a request
is in flight, because the OAuth layer writes rotated tokens in between.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from requests.utils import parse_header_links

from ..store import transaction
from . import state
from .http import Counters, EndpointError, Reply, Requester
from .spec import Context, EndpointSpec, TargetPlan

log = logging.getLogger(__name__)

# Fan-out answers are committed in batches of this many, because each commit
# costs a write to the encrypted file; a kill loses at most one batch of
# requests, which the next run sends again.
TARGETS_PER_COMMIT = 10

# Called after every page with (participant_id, platform, endpoint, items).
ProgressHook = Callable[[str, str, str, int], None]


@dataclass
class EndpointEnv:
    """Inputs for reading one endpoint, beyond its spec."""

    db: state.RunDatabase
    run_id: int
    participant_id: str
    platform: str
    api_url: Callable[[str], str]
    requester: Requester
    page_size: int | None
    pagination: str
    path: str
    base_params: dict[str, str]
    cursor_param: str | None
    page_size_param: str | None
    identity: dict = field(default_factory=dict)
    progress: ProgressHook | None = None
    # Seconds a snapshot without validators stays fresh; None reads it always.
    max_age: float | None = None


@dataclass
class Tally:
    """Counts for one endpoint's run log row."""

    counters: Counters = field(default_factory=Counters)
    pages: int = 0
    items: int = 0
    stored: int = 0
    window_start: datetime | None = None
    cached: int = 0  # fan-out targets served from a cross-participant cache


def full_url(url: str, params: dict[str, Any] | None) -> str:
    """Return ``url`` with ``params`` added to its query string, in a stable order."""
    prepared = requests.models.PreparedRequest()
    prepared.prepare_url(url, sorted((params or {}).items()))
    return prepared.url


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def epoch(text: str | None) -> float:
    """Return an ISO 8601 time as epoch seconds, for stream order keys."""
    parsed = parse_time(text)
    if parsed is None:
        raise EndpointError(f"An item has an unreadable time {text!r}.")
    return parsed.timestamp()


def _conditional(page: state.PageState | None) -> dict[str, str]:
    if page is None:
        return {}
    headers = {}
    if page.etag:
        headers["If-None-Match"] = page.etag
    if page.last_modified:
        headers["If-Modified-Since"] = page.last_modified
    return headers


def _page_state(reply: Reply, next_page: str | None, count: int) -> state.PageState:
    return state.PageState(
        etag=reply.headers.get("ETag"),
        last_modified=reply.headers.get("Last-Modified"),
        next_page=next_page,
        item_count=count,
    )


def _next_page(
    env: EndpointEnv,
    spec: EndpointSpec,
    url: str,
    reply: Reply,
    items: list[dict],
    offset: int,
) -> str | None:
    """Return the URL of the page after ``url``, or None at the end."""
    if not items:
        return None
    style = env.pagination
    if style == "link":
        link = reply.headers.get("Link")
        for entry in parse_header_links(link) if link else []:
            if entry.get("rel") == "next" and entry.get("url"):
                return entry["url"]
        return None
    if style == "offset":
        total = spec.total(reply.body) if spec.total else None
        reached = offset + len(items)
        if total is not None and reached >= total:
            return None
        if total is None and env.page_size and len(items) < env.page_size:
            return None
        return _replace_param(url, {env.cursor_param or "offset": reached})
    if style == "cursor":
        cursor = spec.next_cursor(reply.body, items) if spec.next_cursor else None
        if not cursor:
            return None
        return _replace_param(url, {env.cursor_param or "after": cursor})
    return None


def _replace_param(url: str, params: dict[str, Any]) -> str:
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in params.items()})
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return full_url(bare, query)


def first_url(env: EndpointEnv, spec: EndpointSpec, path_values: dict) -> str:
    """Return the first page's URL with the platform's and the spec's parameters."""
    try:
        path = env.path.format(**path_values)
    except KeyError as exc:
        raise EndpointError(
            f"{env.platform} {spec.name} needs {exc.args[0]!r} from the identity "
            "endpoint, which did not return it."
        ) from None
    params: dict[str, Any] = {**env.base_params, **spec.params}
    if spec.identity_params is not None:
        params.update(spec.identity_params(env.identity))
    if env.page_size and env.page_size_param:
        params[env.page_size_param] = env.page_size
    if env.pagination == "offset":
        params[env.cursor_param or "offset"] = 0
    return full_url(env.api_url(path), params)


def _store_page(
    env: EndpointEnv,
    spec: EndpointSpec,
    items: list[dict],
    first_rank: int,
    write_extra: Callable[[Any], None],
) -> int:
    """Upsert a page's items and run the spec's save hook, in one transaction."""
    now = datetime.now(UTC)
    unique: dict[str, tuple[str, int, dict]] = {}
    distinct: list[dict] = []
    for index, item in enumerate(items):
        item_id = str(spec.item_id(item))
        if item_id in unique:
            continue
        payload = spec.trim(item) if spec.trim else item
        unique[item_id] = (item_id, first_rank + index, payload)
        distinct.append(item)
    with env.db.connect() as con, transaction(con):
        new = state.upsert_records(
            con,
            env.participant_id,
            env.platform,
            spec.name,
            list(unique.values()),
            now,
        )
        if spec.save and distinct:
            ctx = Context(
                con,
                env.run_id,
                env.participant_id,
                env.platform,
                spec.name,
                now,
                env.identity,
                first_rank,
            )
            spec.save(ctx, distinct)
        write_extra(con)
    return new


def _report(env: EndpointEnv, spec: EndpointSpec, count: int) -> None:
    if env.progress is not None:
        env.progress(env.participant_id, env.platform, spec.name, count)


def walk_snapshot(
    env: EndpointEnv, spec: EndpointSpec, tally: Tally, path_values: dict
) -> None:
    """Read every page, sending the ETag or Last-Modified stored for it."""
    with env.db.connect() as con:
        known = {
            row[0]: state.PageState(*row[1:])
            for row in con.execute(
                "SELECT page_url, etag, last_modified, next_page, item_count "
                "FROM extract_pages WHERE participant_id = ? AND platform = ? "
                "AND endpoint = ?",
                [env.participant_id, env.platform, spec.name],
            ).fetchall()
        }
    url: str | None = first_url(env, spec, path_values)
    rank = 1
    offset = 0
    seen: set[str] = set()
    while url is not None:
        if url in seen:
            raise EndpointError(f"{env.platform} {spec.name} repeated a page cursor.")
        seen.add(url)
        previous = known.get(url) if spec.conditional else None
        reply = env.requester.get(
            url,
            tally.counters,
            conditional=_conditional(previous),
            route=spec.source_name,
        )
        tally.pages += 1
        if reply.not_modified and previous is not None:
            tally.counters.unchanged += 1
            rank += previous.item_count
            offset += previous.item_count
            url = previous.next_page
            _report(env, spec, 0)
            continue

        items = spec.items(reply.body)
        next_page = _next_page(env, spec, url, reply, items, offset)
        page_url = url
        validators = _page_state(reply, next_page, len(items))

        def write(con, page_url=page_url, validators=validators):
            state.write_page(
                con, env.participant_id, env.platform, spec.name, page_url, validators
            )

        new = _store_page(env, spec, items, rank, write)
        tally.items += len(items)
        tally.stored += new
        if items and new == 0:
            tally.counters.unchanged += 1
        rank += len(items)
        offset += len(items)
        _report(env, spec, len(items))
        url = next_page


def _newest(*marks: float | None) -> float | None:
    known = [mark for mark in marks if mark is not None]
    return max(known) if known else None


def walk_stream(
    env: EndpointEnv, spec: EndpointSpec, tally: Tally, path_values: dict
) -> None:
    """Read pages newest first until reaching items already held."""
    with env.db.connect() as con:
        cursor = state.read_cursor(con, env.participant_id, env.platform, spec.name)
        first = first_url(env, spec, path_values)
        page = state.read_page(con, env.participant_id, env.platform, spec.name, first)
    stop_at = cursor.high_water
    walk_high = cursor.walk_high_water
    if cursor.resume_url:
        url = cursor.resume_url
        conditional: dict[str, str] = {}
        log.info("resuming %s %s from a stored page", env.platform, spec.name)
    else:
        url = first
        if spec.since_param and stop_at is not None:
            url = _replace_param(url, {spec.since_param: int(stop_at)})
            conditional = {}
        else:
            conditional = _conditional(page) if spec.conditional else {}

    offset = 0
    while url is not None:
        reply = env.requester.get(
            url, tally.counters, conditional=conditional, route=spec.source_name
        )
        tally.pages += 1
        if reply.not_modified:
            # The first page is unchanged, so nothing newer exists.
            tally.counters.unchanged += 1
            _report(env, spec, 0)
            return
        items = spec.items(reply.body)
        keys = [spec.order_key(item) for item in items]
        reached = stop_at is not None and bool(keys) and min(keys) <= stop_at
        next_page = None
        if not (reached or spec.single_page or spec.since_param and stop_at):
            next_page = _next_page(env, spec, url, reply, items, offset)
        if keys:
            walk_high = max(keys) if walk_high is None else max(walk_high, *keys)

        page_url = url
        validators = _page_state(reply, None, len(items))
        done = next_page is None
        oldest = None
        if done and not reached and spec.item_time and items:
            # The walk ran out of pages: the platform's window starts here.
            oldest = min(
                (t for t in (parse_time(spec.item_time(i)) for i in items) if t),
                default=None,
            )
        updated = state.Cursor(
            high_water=_newest(stop_at, walk_high) if done else stop_at,
            resume_url=None if done else next_page,
            walk_high_water=None if done else walk_high,
            window_start=oldest or cursor.window_start,
        )

        def write(con, page_url=page_url, validators=validators, updated=updated):
            if page_url == first:
                state.write_page(
                    con,
                    env.participant_id,
                    env.platform,
                    spec.name,
                    page_url,
                    validators,
                )
            state.write_cursor(
                con, env.participant_id, env.platform, spec.name, updated
            )

        new = _store_page(env, spec, items, offset + 1, write)
        tally.items += len(items)
        tally.stored += new
        if new == 0:
            tally.counters.unchanged += 1
        if oldest is not None:
            tally.window_start = oldest
        offset += len(items)
        conditional = {}
        _report(env, spec, len(items))
        url = next_page


def walk_targets(
    env: EndpointEnv, spec: EndpointSpec, tally: Tally, path_values: dict
) -> None:
    """Send one request per target the spec lists, committing them in batches."""
    with env.db.connect() as con:
        ctx = Context(
            con,
            env.run_id,
            env.participant_id,
            env.platform,
            spec.name,
            datetime.now(UTC),
            env.identity,
        )
        planned = spec.targets(ctx)
        if isinstance(planned, TargetPlan):
            targets = list(planned.targets)
            tally.cached = planned.cached
        else:
            targets = list(planned)
        known = {
            row[0]: state.PageState(*row[1:])
            for row in con.execute(
                "SELECT page_url, etag, last_modified, next_page, item_count "
                "FROM extract_pages WHERE participant_id = ? AND platform = ? "
                "AND endpoint = ?",
                [env.participant_id, env.platform, spec.name],
            ).fetchall()
        }
    pending: list[tuple[str, list[dict], state.PageState]] = []

    def flush() -> None:
        if not pending:
            return
        items = [item for _, page_items, _ in pending for item in page_items]
        batch = list(pending)

        def write(con):
            for url, _, validators in batch:
                state.write_page(
                    con, env.participant_id, env.platform, spec.name, url, validators
                )

        tally.stored += _store_page(env, spec, items, 1, write)
        tally.items += len(items)
        pending.clear()

    try:
        for target in targets:
            values = {**path_values, **target.path_values}
            path = env.path.format(**values)
            url = full_url(
                env.api_url(path), {**env.base_params, **spec.params, **target.params}
            )
            previous = known.get(url) if spec.conditional else None
            reply = env.requester.get(
                url,
                tally.counters,
                conditional=_conditional(previous),
                route=spec.source_name,
            )
            tally.pages += 1
            if reply.not_modified and previous is not None:
                tally.counters.unchanged += 1
                _report(env, spec, 0)
                continue
            items = [
                {"_target": target.key, **entry} for entry in spec.items(reply.body)
            ]
            pending.append((url, items, _page_state(reply, None, len(items))))
            _report(env, spec, len(items))
            if len(pending) >= TARGETS_PER_COMMIT:
                flush()
    finally:
        # What was fetched before a failure is kept.
        flush()


def read_endpoint(env: EndpointEnv, spec: EndpointSpec) -> dict:
    """Read one endpoint, write its run log row and return it."""
    skipped = _skip_fresh_snapshot(env, spec)
    if skipped is not None:
        return skipped
    tally = Tally()
    started = time.monotonic()
    status = "ok"
    error = None
    path_values = spec.path_values(env.identity) if spec.path_values else {}
    try:
        if spec.targets is not None:
            walk_targets(env, spec, tally, path_values)
        elif spec.mode == "stream":
            walk_stream(env, spec, tally, path_values)
        else:
            walk_snapshot(env, spec, tally, path_values)
    except EndpointError as exc:
        status = exc.status
        error = str(exc)
        log.warning(
            "%s %s for participant %s: %s",
            env.platform,
            spec.name,
            env.participant_id,
            error,
        )
    counters = tally.counters
    row = {
        "run_id": env.run_id,
        "participant_id": env.participant_id,
        "platform": env.platform,
        "endpoint": spec.name,
        "status": status,
        "pages": tally.pages,
        "items": tally.items if status in state.OK_STATUSES else None,
        "items_stored": tally.stored,
        "requests": counters.requests,
        "not_modified": counters.not_modified,
        "unchanged": counters.unchanged,
        "rate_limited": counters.rate_limited,
        "retries": counters.retries,
        "duration_s": round(time.monotonic() - started, 3),
        "window_start": tally.window_start,
        "note": spec.note,
        "error": error,
        "finished_at": datetime.now(UTC),
    }
    with env.db.connect() as con, transaction(con):
        if status == "ok":
            held = state.count_records(con, env.participant_id, env.platform, spec.name)
            if held == 0 and tally.cached == 0:
                row["status"] = "empty"
        state.write_log(con, row)
    return row


def _skip_fresh_snapshot(env: EndpointEnv, spec: EndpointSpec) -> dict | None:
    """Return a run log row when a snapshot without validators is still fresh.

    A snapshot endpoint whose platform sends neither ETag nor Last-Modified can
    only be re-read in full. When its last complete read is younger than
    ``env.max_age`` seconds it is not asked again. The row's ``note`` explains
    that, and ``not_due_until`` is the UTC time from which a run reads it again.
    It is the only row with ``not_due_until``, which is not a run log column.
    """
    if env.max_age is None or spec.mode != "snapshot" or spec.targets is not None:
        return None
    with env.db.connect() as con:
        fresh = state.fresh_unvalidated(
            con, env.participant_id, env.platform, spec.name, env.max_age
        )
        if fresh is None:
            return None
        last, finished_at = fresh
        hours = env.max_age / 3600
        row = {
            "run_id": env.run_id,
            "participant_id": env.participant_id,
            "platform": env.platform,
            "endpoint": spec.name,
            "status": last,
            "pages": 0,
            "items": 0,
            "items_stored": 0,
            "requests": 0,
            "not_modified": 0,
            "unchanged": 0,
            "rate_limited": 0,
            "retries": 0,
            "duration_s": 0.0,
            "window_start": None,
            "note": (
                f"Read in full less than {hours:g} h ago, and the platform sends no "
                "ETag or Last-Modified, so it was not asked again (--refresh "
                "forces it)."
            ),
            "error": None,
            "finished_at": datetime.now(UTC),
            "not_due_until": finished_at.astimezone(UTC)
            + timedelta(seconds=env.max_age),
        }
        with transaction(con):
            state.write_log(con, row)
    return row
