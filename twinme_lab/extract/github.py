"""GitHub: the user, owned repositories, their languages, and public events.

The events API serves at most 300 events from the last 90 days, so each run
records where that window began. Push events no longer list their commits, so
push regularity counts push events, not commits.
"""

from __future__ import annotations

import requests

from .engine import epoch
from .http import EndpointError, RetryPolicy
from .limits import parse_retry_after
from .spec import Context, EndpointSpec, Target
from .state import insert_values

IDENTITY_ENDPOINT = "user"

EVENTS_NOTE = (
    "GitHub serves at most 300 public events from the last 90 days; window_start "
    "is the oldest event it still served."
)


def rate_limit_wait(
    response: requests.Response, policy: RetryPolicy, wall_now: float
) -> float | None:
    """Return the wait GitHub requests, or None when the response is no rate limit.

    GitHub answers an exhausted primary limit and a secondary limit with 403 or
    429. Its docs say: honour Retry-After; else, with x-ratelimit-remaining 0,
    wait until x-ratelimit-reset; else wait at least one minute.
    """
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    retry_after = parse_retry_after(headers.get("Retry-After"), wall_now)
    if retry_after is not None:
        return retry_after
    if headers.get("x-ratelimit-remaining") == "0":
        try:
            return max(0.0, float(headers.get("x-ratelimit-reset", "")) - wall_now)
        except ValueError:
            return policy.secondary_wait
    text = response.text.lower() if response.content else ""
    if "secondary rate limit" in text or "abuse" in text:
        return policy.secondary_wait
    if response.status_code == 429:
        return policy.secondary_wait
    return None


def _save_user(ctx: Context, items: list[dict]) -> None:
    return None


def _save_repos(ctx: Context, items: list[dict]) -> None:
    login = (ctx.identity or {}).get("login")
    if login is None:
        # Without the login, ownership is unknown; storing owned=false would
        # turn an unread user endpoint into "owns nothing".
        raise EndpointError(
            "GitHub repos need the account login from the user endpoint, which "
            "has not been read yet; run extract again."
        )
    rows = []
    for repo in items:
        owner = (repo.get("owner") or {}).get("login")
        rows.append(
            [
                ctx.participant_id,
                ctx.platform,
                str(repo["id"]),
                repo["full_name"],
                login is not None and owner == login,
                bool(repo.get("fork")),
                repo.get("language"),
                repo.get("created_at"),
                repo.get("pushed_at"),
            ]
        )
    insert_values(ctx.con, "INSERT OR REPLACE INTO code_repositories", rows)


def _save_events(ctx: Context, items: list[dict]) -> None:
    insert_values(
        ctx.con,
        "INSERT OR REPLACE INTO code_activity",
        [
            [
                ctx.participant_id,
                ctx.platform,
                str(e["id"]),
                e.get("type") or "",
                (e.get("repo") or {}).get("name"),
                e["created_at"],
            ]
            for e in items
        ],
    )


def _language_targets(ctx: Context) -> list[Target]:
    rows = ctx.con.execute(
        "SELECT repo_id, full_name FROM code_repositories WHERE participant_id = ? "
        "AND platform = ? AND owned AND NOT fork ORDER BY repo_id",
        [ctx.participant_id, ctx.platform],
    ).fetchall()
    targets = []
    for repo_id, full_name in rows:
        owner, _, name = full_name.partition("/")
        targets.append(Target(repo_id, {"owner": owner, "repo": name}))
    return targets


def _language_items(body: dict) -> list[dict]:
    return [{"languages": body or {}}]


def _save_languages(ctx: Context, items: list[dict]) -> None:
    for item in items:
        repo_id = item["_target"]
        ctx.con.execute(
            "DELETE FROM code_languages WHERE participant_id = ? AND platform = ? "
            "AND repo_id = ?",
            [ctx.participant_id, ctx.platform, repo_id],
        )
        rows = [
            [ctx.participant_id, ctx.platform, repo_id, language, int(size)]
            for language, size in sorted(item["languages"].items())
        ]
        insert_values(ctx.con, "INSERT INTO code_languages", rows)


def _trim_repo(repo: dict) -> dict:
    keep = ("id", "full_name", "fork", "language", "created_at", "pushed_at")
    trimmed = {key: repo.get(key) for key in keep}
    trimmed["owner"] = {"login": (repo.get("owner") or {}).get("login")}
    return trimmed


def _trim_event(event: dict) -> dict:
    return {
        "id": event.get("id"),
        "type": event.get("type"),
        "repo": {"name": (event.get("repo") or {}).get("name")},
        "created_at": event.get("created_at"),
    }


ENDPOINTS = (
    EndpointSpec(
        name="user",
        items=lambda body: [body] if body else [],
        item_id=lambda user: user["id"],
        trim=lambda user: {"id": user.get("id"), "login": user.get("login")},
        save=_save_user,
    ),
    EndpointSpec(
        name="repos",
        items=lambda body: body or [],
        item_id=lambda repo: repo["id"],
        trim=_trim_repo,
        save=_save_repos,
    ),
    EndpointSpec(
        name="events",
        mode="stream",
        items=lambda body: body or [],
        item_id=lambda event: event["id"],
        # Event ids are not promised to grow with time; creation times are.
        order_key=lambda event: epoch(event.get("created_at")),
        item_time=lambda event: event.get("created_at"),
        path_values=lambda identity: (
            {"login": identity["login"]} if identity.get("login") else {}
        ),
        trim=_trim_event,
        save=_save_events,
        note=EVENTS_NOTE,
    ),
    EndpointSpec(
        name="languages",
        items=_language_items,
        item_id=lambda item: item["_target"],
        targets=_language_targets,
        save=_save_languages,
        after=("repos",),
    ),
)
