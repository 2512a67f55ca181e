"""Benchmark: import 1,000,000 extended-history plays three ways, side by side.

Generates Spotify extended streaming history in the real format (23 keys per
play, two-space indented JSON arrays, split over several
``Streaming_History_Audio_*.json`` files as Spotify splits them) and then runs,
each in its own subprocess so peak memory (``ru_maxrss``) is measured per method:

1. ``twinme``: ``import_path`` into an encrypted workspace, with everything an
   import does (validation, record keys, ordinals, provenance, one transaction).
2. ``duckdb``: DuckDB ``read_json`` into a table of a plain, unencrypted file.
3. ``pandas``: ``pandas.read_json`` per file, concatenated, then inserted into a
   table of a plain DuckDB file.

Usage::

    .venv/bin/python benchmarks/bench_import.py [--plays 1000000] [--files 40]

Prints seconds, ratios and peak memory, and the targets: the importer at most
2.5x the plain DuckDB read, at least 1.2x faster than pandas, under 1.5 GB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PLATFORMS = ("ios", "android", "windows", "osx", "web_player")
REASON_START = ("trackdone", "clickrow", "fwdbtn", "backbtn", "playbtn", "appload")
REASON_END = ("trackdone", "endplay", "fwdbtn", "backbtn", "logout", "remote")


def _play(rng: random.Random, start: datetime) -> dict:
    """Return one play with the 23 keys of the current extended format."""
    ended = start + timedelta(seconds=rng.randrange(0, 6 * 365 * 86400))
    podcast = rng.random() < 0.03
    artist = rng.randrange(3000)
    track = rng.randrange(40000)
    ms_played = rng.choice((0, rng.randrange(1, 30000), rng.randrange(30000, 400000)))
    skipped = rng.choice((True, False, False, None))
    return {
        "ts": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": rng.choice(PLATFORMS),
        "ms_played": ms_played,
        "conn_country": "US",
        "ip_addr": f"192.0.2.{rng.randrange(1, 255)}",
        "master_metadata_track_name": None if podcast else f"Track {track}",
        "master_metadata_album_artist_name": None if podcast else f"Artist {artist}",
        "master_metadata_album_album_name": None if podcast else f"Album {track // 12}",
        "spotify_track_uri": None if podcast else f"spotify:track:{track:022d}",
        "episode_name": f"Episode {track}" if podcast else None,
        "episode_show_name": f"Show {artist % 200}" if podcast else None,
        "spotify_episode_uri": f"spotify:episode:{track:022d}" if podcast else None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": rng.choice(REASON_START),
        "reason_end": rng.choice(REASON_END),
        "shuffle": rng.random() < 0.4,
        "skipped": skipped,
        "offline": rng.random() < 0.05,
        "offline_timestamp": int(ended.timestamp()) - rng.randrange(0, 600),
        "incognito_mode": False,
    }


def generate(folder: Path, plays: int, files: int, seed: int = 7) -> None:
    """Write ``plays`` plays over ``files`` files in Spotify's layout."""
    rng = random.Random(seed)
    start = datetime(2018, 1, 1, tzinfo=UTC)
    target = folder / "Spotify Extended Streaming History"
    target.mkdir(parents=True, exist_ok=True)
    per_file = -(-plays // files)
    written = 0
    for index in range(files):
        count = min(per_file, plays - written)
        if count <= 0:
            break
        records = [_play(rng, start) for _ in range(count)]
        year = 2018 + index * 6 // files
        name = f"Streaming_History_Audio_{year}-{year + 1}_{index}.json"
        (target / name).write_text(json.dumps(records, indent=2))
        written += count


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_twinme(data: Path, scratch: Path) -> dict:
    os.environ["TWINME_CONFIG_DIR"] = str(scratch / "config")
    from twinme_lab import participants
    from twinme_lab.imports import import_path
    from twinme_lab.workspace import init_workspace

    workspace, _ = init_workspace(scratch / "ws")
    participants.add(workspace, "bench")
    started = time.perf_counter()
    summary = import_path(workspace, "spotify", data, "bench")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": summary.added}


def run_duckdb(data: Path, scratch: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(scratch / "plain.duckdb"))
    pattern = str(data / "Spotify Extended Streaming History" / "*.json")
    started = time.perf_counter()
    con.execute(
        "CREATE TABLE plays AS SELECT * FROM read_json(?, format = 'array')",
        [pattern],
    )
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM plays").fetchone()[0]
    con.close()
    return {"seconds": seconds, "rows": rows}


def run_pandas(data: Path, scratch: Path) -> dict:
    import duckdb
    import pandas as pd

    started = time.perf_counter()
    frames = [
        pd.read_json(path, orient="records")
        for path in sorted((data / "Spotify Extended Streaming History").glob("*"))
    ]
    frame = pd.concat(frames, ignore_index=True)
    del frames
    con = duckdb.connect(str(scratch / "pandas.duckdb"))
    con.register("frame", frame)
    con.execute("CREATE TABLE plays AS SELECT * FROM frame")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM plays").fetchone()[0]
    con.close()
    return {"seconds": seconds, "rows": rows}


METHODS = {"twinme": run_twinme, "duckdb": run_duckdb, "pandas": run_pandas}


def _child(method: str, data: Path, scratch: Path) -> None:
    result = METHODS[method](data, scratch)
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result))


def _measure(method: str, data: Path, root: Path) -> dict:
    scratch = root / method
    scratch.mkdir()
    output = subprocess.run(
        [sys.executable, __file__, "--child", method, str(data), str(scratch)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plays", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "DATA", "SCRATCH"))
    args = parser.parse_args()
    if args.child:
        method, data, scratch = args.child
        _child(method, Path(data), Path(scratch))
        return

    with tempfile.TemporaryDirectory(prefix="twinme-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        generate(root / "data", args.plays, args.files)
        size = sum(p.stat().st_size for p in (root / "data").rglob("*.json"))
        print(
            f"generated {args.plays:,} plays in {args.files} files, "
            f"{size / 1e6:.0f} MB, in {time.perf_counter() - started:.0f} s"
        )
        results = {m: _measure(m, root / "data", root) for m in METHODS}

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    for method, result in results.items():
        print(
            f"{method:7s} {result['seconds']:7.1f} s  peak {result['peak_mb']:6.0f} MB"
            f"  rows {result['rows']:,}"
        )
    ours = results["twinme"]
    vs_duckdb = ours["seconds"] / results["duckdb"]["seconds"]
    vs_pandas = results["pandas"]["seconds"] / ours["seconds"]
    print(f"importer / plain DuckDB read: {vs_duckdb:.2f}x (target <= 2.5x)")
    print(f"pandas / importer: {vs_pandas:.2f}x faster (target >= 1.2x)")
    print(f"importer peak memory: {ours['peak_mb'] / 1024:.2f} GB (target < 1.5 GB)")


if __name__ == "__main__":
    main()
