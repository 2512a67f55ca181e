"""Extraction pacing against the sandbox: the engine beside a naive loop.

The sandbox limits Spotify to 180 requests a minute per app (a fixed window, as
its rate limiter counts), and several sandbox users are connected, so every
request of the run shares one budget. Three measurements:

1. engine: ``run_extraction`` over every participant (the engine paces from the
   platform module's 180 a minute, per app);
2. naive: the same pages fetched as fast as possible, sleeping only for the
   Retry-After of a 429;
3. re-run: the engine again with nothing new.

Run: ``.venv/bin/python benchmarks/bench_extract.py [--users N]``. Prints one
JSON object. Numbers depend on the machine's load, because every page the engine
reads is also a short write to the encrypted DuckDB file.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import requests

from twinme_lab import oauth, participants, sandbox
from twinme_lab.extract.run import run_extraction
from twinme_lab.workspace import init_workspace

LIMIT = 180
WINDOW = 60.0


def connect(workspace, sb, count: int) -> list[str]:
    ids = []
    for index in range(count):
        pid = f"b{index:02d}"
        participants.add(workspace, pid)
        pending = oauth.begin(workspace, "spotify", pid)
        response = requests.get(
            pending.url + f"&sandbox_user={index}",
            verify=sb.ca_path,
            allow_redirects=False,
            timeout=10,
        )
        oauth.complete(workspace, pending, response.headers["Location"])
        ids.append(pid)
    return ids


def spotify_stats(sb) -> dict:
    stats = sb.stats()["platforms"].get("spotify", {})
    return {
        "requests": stats.get("requests", 0),
        "not_modified": stats.get("not_modified", 0),
        "rate_limited": stats.get("rate_limited", 0),
    }


def engine_run(workspace, sb) -> dict:
    sb.set_rate_limit("spotify", LIMIT, WINDOW, "app")
    sb.reset_stats()
    started = time.monotonic()
    result = run_extraction(workspace, platform="spotify")
    elapsed = time.monotonic() - started
    stats = spotify_stats(sb)
    unchanged = sum(row["unchanged"] for row in result.rows)
    per_minute = stats["requests"] / elapsed * 60
    return {
        **stats,
        "seconds": round(elapsed, 1),
        "requests_per_minute": round(per_minute, 1),
        "share_of_limit": round(per_minute / LIMIT, 3),
        "unchanged_pages": unchanged,
        "items_received": sum(row["items"] or 0 for row in result.rows),
        "exit_code": result.exit_code,
    }


def naive_pages(session, first_urls: list[str]) -> list[str]:
    """Follow every ``next`` link from the given first pages, returning artists."""
    artists: set[str] = set()
    queue = list(first_urls)
    while queue:
        url = queue.pop(0)
        body = naive_get(session, url)
        container = body.get("artists", body) if isinstance(body, dict) else {}
        for item in container.get("items") or []:
            track = item.get("track") or item
            for artist in track.get("artists") or []:
                artists.add(artist["id"])
        if container.get("next"):
            queue.append(container["next"])
    return sorted(artists)


def naive_get(session, url: str):
    """GET until not 429, sleeping exactly Retry-After seconds after a 429."""
    while True:
        response = session.get(url, timeout=30)
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        response.raise_for_status()
        return response.json()


def naive_run(workspace, sb, ids: list[str]) -> dict:
    sb.set_rate_limit("spotify", LIMIT, WINDOW, "app")
    sb.reset_stats()
    base = sb.api_url("spotify")
    started = time.monotonic()
    seen: set[str] = set()
    for pid in ids:
        session = oauth.authorized_session(workspace, pid, "spotify")
        first = [f"{base}/v1/me", f"{base}/v1/me/player/recently-played?limit=50"]
        for kind in ("artists", "tracks"):
            for time_range in ("short_term", "medium_term", "long_term"):
                first.append(
                    f"{base}/v1/me/top/{kind}?limit=50&offset=0&time_range={time_range}"
                )
        first.append(f"{base}/v1/me/tracks?limit=50&offset=0")
        first.append(f"{base}/v1/me/following?type=artist&limit=50")
        for artist_id in naive_pages(session, first):
            if artist_id not in seen:
                seen.add(artist_id)
                naive_get(session, f"{base}/v1/artists/{artist_id}")
    elapsed = time.monotonic() - started
    stats = spotify_stats(sb)
    successful = stats["requests"] - stats["rate_limited"]
    per_minute = successful / elapsed * 60
    return {
        **stats,
        "seconds": round(elapsed, 1),
        "successful_per_minute": round(per_minute, 1),
        "share_of_limit": round(per_minute / LIMIT, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=18, help="sandbox participants")
    args = parser.parse_args()

    os.environ.setdefault("TWINME_CONFIG_DIR", tempfile.mkdtemp())
    with sandbox.serve(
        auto_consent=True, seed=0, users=args.users, rate_limits=False
    ) as sb:
        os.environ.update(sb.env())
        root = tempfile.mkdtemp()
        engine_ws, _ = init_workspace(os.path.join(root, "engine"))
        ids = connect(engine_ws, sb, args.users)
        naive_ws, _ = init_workspace(os.path.join(root, "naive"))
        connect(naive_ws, sb, args.users)

        report = {"limit_per_minute": LIMIT, "participants": args.users}
        report["engine"] = engine_run(engine_ws, sb)
        report["naive"] = naive_run(naive_ws, sb, ids)
        report["engine_rerun"] = engine_run(engine_ws, sb)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
