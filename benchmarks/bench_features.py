"""Benchmark: listening features for 1,000 participants with 10,000 plays each.

Side by side, on the same generated plays:

1. ``twinme``: ``compute_features`` on an encrypted workspace (every feature
   module; the listening module computes ten features, NULL rules and the write
   of the features table included).
2. ``twinme-plain``: the same on an unencrypted workspace, for the encryption
   overhead.
   The listening module's query alone (ten features, no write) is timed too.
3. ``hand SQL``: one hand-written DuckDB query for five listening features
   (hours, active days, distinct artists, skip rate, night share in local time)
   on a plain table in an unencrypted file.
4. ``pandas``: a vectorized groupby computing the same five features from a
   DataFrame already in memory (loading it is not timed).

Plays are inserted straight into ``listening_events`` with SQL (not through the
importer), so the numbers time feature computation only.

Usage::

    .venv/bin/python benchmarks/bench_features.py [--participants 1000]
        [--plays 10000]

Targets: twinme within 1.2x of the hand SQL, faster than pandas, and encrypted
at most 1.15x the unencrypted run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from twinme_lab.features import compute_features, features_table, listening
from twinme_lab.workspace import init_workspace

ZONE = "Europe/Berlin"

PLAYS_SQL = """
SELECT 'p' || lpad(CAST(r // {plays} AS VARCHAR), 5, '0') AS participant_id,
       TIMESTAMPTZ '2024-01-01 00:00:00+00'
           + to_seconds((hash(r) % (182 * 86400))::BIGINT) AS ended_at,
       CASE WHEN hash(r * 7) % 20 = 0 THEN 'podcast' ELSE 'music' END AS kind,
       (30000 + hash(r * 3) % 240000)::BIGINT AS ms_played,
       'artist ' || CAST(hash(r * 11) % (50 + (r // {plays}) % 300) AS VARCHAR)
           AS artist_name,
       CASE WHEN hash(r * 5) % 10 = 0 THEN NULL
            ELSE hash(r * 13) % 4 = 0 END AS skipped,
       r
FROM range({total}) t(r)
"""

HAND_SQL = f"""
SELECT participant_id,
       sum(ms_played) / 3600000.0 AS hours,
       count(DISTINCT CAST(timezone('{ZONE}', ended_at) AS DATE)) AS active_days,
       count(DISTINCT artist_name) FILTER (WHERE kind = 'music') AS artists,
       avg(CASE WHEN skipped THEN 1.0 ELSE 0.0 END)
           FILTER (WHERE kind = 'music' AND skipped IS NOT NULL) AS skip_rate,
       avg(CASE WHEN hour(timezone('{ZONE}', ended_at)) < 6 THEN 1.0 ELSE 0.0 END)
           AS night_share
FROM plays GROUP BY participant_id ORDER BY participant_id
"""


def fill_workspace(ws, participants: int, plays: int) -> None:
    with ws.connect() as con:
        con.execute(
            "INSERT INTO participants SELECT 'p' || lpad(CAST(i AS VARCHAR), 5, '0'), "
            "?, NULL, NULL, true, now() FROM range(?) t(i)",
            [ZONE, participants],
        )
        con.execute(
            "INSERT INTO listening_events (participant_id, source, kind, ended_at, "
            "time_precision, ms_played, track_name, artist_name, skipped, "
            "record_key, record_ordinal, import_id) "
            "SELECT participant_id, 'spotify_extended', kind, ended_at, 'second', "
            "ms_played, 'track', artist_name, skipped, CAST(r AS VARCHAR), 1, 0 "
            f"FROM ({PLAYS_SQL.format(plays=plays, total=participants * plays)})"
        )
        con.execute("CHECKPOINT")


FEATURE_NAMES = {
    "listening_hours": "hours",
    "listening_active_days": "active_days",
    "listening_distinct_artists": "artists",
    "listening_skip_rate": "skip_rate",
    "listening_night_share": "night_share",
}


def time_twinme(
    root: Path, participants: int, plays: int, encrypted: bool
) -> tuple[float, pd.DataFrame]:
    ws, _ = init_workspace(root, encrypted=encrypted)
    fill_workspace(ws, participants, plays)
    started = time.perf_counter()
    compute_features(ws)
    seconds = time.perf_counter() - started
    with ws.connect() as con:
        con.execute(
            "CREATE TEMP TABLE feature_scope AS "
            "SELECT participant_id, timezone FROM participants"
        )
        started = time.perf_counter()
        con.execute(listening.SQL).fetchall()
        module_seconds = time.perf_counter() - started
    print(
        f"  listening module query alone ({'encrypted' if encrypted else 'plain'}):"
        f" {module_seconds:8.2f} s"
    )
    rows = features_table(ws)
    rows = rows[rows["feature"].isin(FEATURE_NAMES)]
    wide = rows.pivot(index="participant_id", columns="feature", values="value")
    return seconds, wide.rename(columns=FEATURE_NAMES)[list(FEATURE_NAMES.values())]


def pandas_features(frame: pd.DataFrame) -> pd.DataFrame:
    local = frame["ended_at"].dt.tz_convert(ZONE)
    music = frame["kind"] == "music"
    skip_known = music & frame["skipped"].notna()
    work = pd.DataFrame(
        {
            "participant_id": frame["participant_id"],
            "ms": frame["ms_played"],
            "day": local.dt.normalize(),
            "artist": frame["artist_name"].where(music),
            "skip": frame["skipped"].astype("float").where(skip_known),
            "night": (local.dt.hour < 6).astype(float),
        }
    )
    grouped = work.groupby("participant_id", sort=True)
    return pd.DataFrame(
        {
            "hours": grouped["ms"].sum() / 3_600_000.0,
            "active_days": grouped["day"].nunique(),
            "artists": grouped["artist"].nunique(),
            "skip_rate": grouped["skip"].mean(),
            "night_share": grouped["night"].mean(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--plays", type=int, default=10000)
    args = parser.parse_args()
    n, k = args.participants, args.plays
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )
    print(f"{n} participants x {k} plays = {n * k:,} plays")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("TWINME_CONFIG_DIR", str(Path(tmp) / "config"))
        encrypted, values = time_twinme(Path(tmp) / "enc", n, k, encrypted=True)
        plain, _ = time_twinme(Path(tmp) / "plain", n, k, encrypted=False)

        con = duckdb.connect(str(Path(tmp) / "hand.duckdb"))
        con.execute(
            "CREATE TABLE plays AS SELECT participant_id, ended_at, kind, ms_played, "
            f"artist_name, skipped FROM ({PLAYS_SQL.format(plays=k, total=n * k)})"
        )
        con.execute("CHECKPOINT")
        started = time.perf_counter()
        hand_values = con.execute(HAND_SQL).df().set_index("participant_id")
        hand = time.perf_counter() - started
        frame = con.execute("SELECT * FROM plays").df()
        con.close()
    started = time.perf_counter()
    pandas_values = pandas_features(frame)
    pandas_seconds = time.perf_counter() - started
    # All three must compute the same numbers for the comparison to mean anything.
    for name, other in (("hand SQL", hand_values), ("pandas", pandas_values)):
        difference = (values - other.astype(float)).abs().max().max()
        print(f"  largest difference twinme vs {name}: {difference:.2e}")

    print(f"  twinme compute_features, encrypted:   {encrypted:8.2f} s")
    print(f"  twinme compute_features, unencrypted: {plain:8.2f} s")
    print(f"  hand-written DuckDB SQL (5 features): {hand:8.2f} s")
    print(f"  pandas groupby (5 features):          {pandas_seconds:8.2f} s")
    print(f"  twinme / hand SQL:       {encrypted / hand:6.2f}  (target <= 1.2)")
    print(f"  pandas / twinme:         {pandas_seconds / encrypted:6.2f}  (target > 1)")
    print(f"  encrypted / unencrypted: {encrypted / plain:6.2f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
