"""Benchmark: listening features for 1,000 participants with 10,000 plays each.

Side by side, on the same generated plays (one time zone, Europe/Berlin, second
precision only, so the account-data deduplication finds nothing to drop):

1. ``twinme``: ``compute_features`` on an encrypted workspace, once for every
   feature (every module runs, the others find no rows) and once with
   ``features=`` the five (hours, active days, distinct artists, skip rate,
   night share), which runs only the listening module with only the
   aggregations those five need. Both apply the minimum-observation rules and
   write the features table. The five-feature run follows the ten-feature run
   on the same workspace, as the hand five-feature query follows the ten.
2. ``twinme-plain``: the same on an unencrypted workspace, for the encryption
   overhead. The listening module's setup statements and query alone (no
   write) are timed on both, for all ten listening features.
3. ``hand SQL``: hand-written DuckDB queries on a plain table in an unencrypted
   file, one for the same ten features and one for the five. They use the time
   zone as a constant, while the module reads each participant's zone from a
   column.
4. ``pandas``: vectorized groupbys computing the same ten and the same five
   features from a DataFrame already in memory (loading it is not timed).

Plays are inserted straight into ``listening_events`` with SQL (not through the
importer), so the numbers time feature computation only. The script checks that
all methods return the same values before it prints any ratio.

Usage::

    .venv/bin/python benchmarks/bench_features.py [--participants 1000]
        [--plays 10000]

Targets: twinme within 1.2x of the hand SQL and faster than pandas, for ten
and for five features, and encrypted at most 1.15x the unencrypted run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
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

HAND_SQL_TEN = f"""
WITH audio AS (
    SELECT *, timezone('{ZONE}', ended_at) AS local_ts FROM plays
    WHERE kind IN ('music', 'podcast', 'audiobook')
),
per_participant AS (
    SELECT participant_id,
           sum(ms_played) / 3600000.0 AS hours,
           count(DISTINCT CAST(local_ts AS DATE)) AS active_days,
           coalesce(sum(ms_played) FILTER (WHERE kind = 'podcast'), 0)
               / sum(ms_played) AS podcast_share,
           avg(CASE WHEN skipped THEN 1.0 ELSE 0.0 END)
               FILTER (WHERE kind = 'music' AND skipped IS NOT NULL) AS skip_rate,
           avg(CASE WHEN hour(local_ts) < 6 THEN 1.0 ELSE 0.0 END) AS night_share,
           avg(CASE WHEN dayofweek(local_ts) IN (0, 6) THEN 1.0 ELSE 0.0 END)
               AS weekend_share
    FROM audio GROUP BY participant_id
),
per_artist AS (
    SELECT participant_id, artist_name, count(*) AS n,
           min(date_trunc('month', local_ts)) AS first_month
    FROM audio WHERE kind = 'music' AND artist_name IS NOT NULL
    GROUP BY participant_id, artist_name
),
shares AS (
    SELECT *, n / sum(n) OVER (PARTITION BY participant_id) AS share,
           min(first_month) OVER (PARTITION BY participant_id) AS history_start
    FROM per_artist
),
month_span AS (
    SELECT participant_id,
           datediff('month', min(date_trunc('month', local_ts)),
                    max(date_trunc('month', local_ts))) AS months_after
    FROM audio WHERE kind = 'music' AND artist_name IS NOT NULL
    GROUP BY participant_id
),
artists AS (
    SELECT participant_id, count(*) AS artists, max(share) AS top_share,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum(share * ln(share) ORDER BY artist_name) / ln(count(*))
           END AS entropy,
           count(*) FILTER (WHERE first_month > history_start) AS new_artists
    FROM shares GROUP BY participant_id
)
SELECT p.participant_id, p.hours, p.active_days, a.artists, p.skip_rate,
       p.night_share, a.entropy, a.top_share, p.weekend_share, p.podcast_share,
       a.new_artists / nullif(m.months_after, 0) AS new_artist_rate
FROM per_participant p
LEFT JOIN artists a USING (participant_id)
LEFT JOIN month_span m USING (participant_id)
ORDER BY p.participant_id
"""

HAND_SQL_FIVE = f"""
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


FIVE = ["hours", "active_days", "artists", "skip_rate", "night_share"]

FEATURE_NAMES = {
    "listening_hours": "hours",
    "listening_active_days": "active_days",
    "listening_distinct_artists": "artists",
    "listening_skip_rate": "skip_rate",
    "listening_night_share": "night_share",
    "listening_artist_entropy": "entropy",
    "listening_top_artist_share": "top_share",
    "listening_weekend_share": "weekend_share",
    "listening_podcast_share": "podcast_share",
    "listening_new_artist_rate": "new_artist_rate",
}
TEN = list(FEATURE_NAMES.values())
FIVE_FEATURES = {name: short for name, short in FEATURE_NAMES.items() if short in FIVE}


def stored_values(ws, names: dict[str, str]) -> pd.DataFrame:
    """Return the stored values of ``names``, one row per participant."""
    rows = features_table(ws)
    rows = rows[rows["feature"].isin(names)]
    wide = rows.pivot(index="participant_id", columns="feature", values="value")
    return wide.rename(columns=names)[list(names.values())]


def time_twinme(root: Path, participants: int, plays: int, encrypted: bool) -> dict:
    """Fill a new workspace, then time compute_features and the listening query.

    Returns the seconds of the ten-feature run, the five-feature run and the
    module's setup and query alone, and the stored values of both runs.
    """
    ws, _ = init_workspace(root, encrypted=encrypted)
    fill_workspace(ws, participants, plays)
    result = {}
    result["ten"], result["ten_cpu"], _ = timed(compute_features, ws)
    result["ten_values"] = stored_values(ws, FEATURE_NAMES)
    result["five"], result["five_cpu"], _ = timed(
        lambda: compute_features(ws, features=list(FIVE_FEATURES))
    )
    result["five_values"] = stored_values(ws, FIVE_FEATURES)
    with ws.connect() as con:
        con.execute(
            "CREATE TEMP TABLE feature_scope AS "
            "SELECT participant_id, timezone FROM participants"
        )

        def run_module():
            for statement in listening.SETUP_SQL:
                con.execute(statement)
            return con.execute(listening.SQL).fetchall()

        result["module"], result["module_cpu"], _ = timed(run_module)
    return result


def pandas_five(frame: pd.DataFrame) -> pd.DataFrame:
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


def pandas_ten(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[frame["kind"].isin(["music", "podcast", "audiobook"])]
    local = frame["ended_at"].dt.tz_convert(ZONE)
    music = frame["kind"] == "music"
    skip_known = music & frame["skipped"].notna()
    month = local.dt.tz_localize(None).dt.to_period("M")
    work = pd.DataFrame(
        {
            "participant_id": frame["participant_id"],
            "ms": frame["ms_played"],
            "podcast_ms": frame["ms_played"].where(frame["kind"] == "podcast", 0),
            "day": local.dt.normalize(),
            "skip": frame["skipped"].astype("float").where(skip_known),
            "night": (local.dt.hour < 6).astype(float),
            "weekend": (local.dt.day_of_week >= 5).astype(float),
        }
    )
    grouped = work.groupby("participant_id", sort=True)
    result = pd.DataFrame(
        {
            "hours": grouped["ms"].sum() / 3_600_000.0,
            "active_days": grouped["day"].nunique(),
            "skip_rate": grouped["skip"].mean(),
            "night_share": grouped["night"].mean(),
            "weekend_share": grouped["weekend"].mean(),
            "podcast_share": grouped["podcast_ms"].sum() / grouped["ms"].sum(),
        }
    )

    with_artist = music & frame["artist_name"].notna()
    artist_plays = pd.DataFrame(
        {
            "participant_id": frame["participant_id"][with_artist],
            "artist": frame["artist_name"][with_artist],
            "month": month[with_artist].dt.year * 12 + month[with_artist].dt.month,
        }
    )
    per_artist = artist_plays.groupby(["participant_id", "artist"], sort=True).agg(
        n=("month", "size"), first_month=("month", "min")
    )
    by_participant = per_artist.groupby(level="participant_id")
    share = per_artist["n"] / by_participant["n"].transform("sum")
    artists = by_participant.size()
    entropy = -(share * np.log(share)).groupby(level="participant_id").sum()
    history_start = by_participant["first_month"].transform("min")
    new_artists = (
        (per_artist["first_month"] > history_start)
        .groupby(level="participant_id")
        .sum()
    )
    months = artist_plays.groupby("participant_id")["month"]
    months_after = months.max() - months.min()
    result["artists"] = artists
    result["entropy"] = (entropy / np.log(artists)).where(artists > 1, 0.0)
    result["top_share"] = share.groupby(level="participant_id").max()
    result["new_artist_rate"] = (new_artists / months_after).where(months_after > 0)
    return result[TEN]


def largest_difference(left: pd.DataFrame, right: pd.DataFrame) -> float:
    """Return the largest absolute difference over all cells, NaN counting as a
    mismatch unless both sides are NaN."""
    right = right.astype(float).reindex(index=left.index, columns=left.columns)
    both_missing = left.isna() & right.isna()
    difference = (left - right).abs().where(~both_missing, 0.0)
    return float(difference.fillna(float("inf")).max().max())


def cpu_seconds() -> float:
    """Return the process's user and system CPU time, DuckDB's threads included."""
    times = os.times()
    return times.user + times.system


def timed(function, *args) -> tuple[float, float, object]:
    """Run a function and return its wall-clock seconds, CPU seconds and result.

    CPU seconds depend less on other jobs on a shared machine than wall-clock
    seconds do.
    """
    started, started_cpu = time.perf_counter(), cpu_seconds()
    result = function(*args)
    return time.perf_counter() - started, cpu_seconds() - started_cpu, result


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--plays", type=int, default=10000)
    args = parser.parse_args()
    n, k = args.participants, args.plays
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
        f"pandas {pd.__version__}"
    )
    print(f"load average at the start: {load_average()}")
    print(f"{n} participants x {k} plays = {n * k:,} plays")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("TWINME_CONFIG_DIR", str(Path(tmp) / "config"))
        encrypted = time_twinme(Path(tmp) / "enc", n, k, encrypted=True)
        plain = time_twinme(Path(tmp) / "plain", n, k, encrypted=False)

        con = duckdb.connect(str(Path(tmp) / "hand.duckdb"))
        con.execute(
            "CREATE TABLE plays AS SELECT participant_id, ended_at, kind, ms_played, "
            f"artist_name, skipped FROM ({PLAYS_SQL.format(plays=k, total=n * k)})"
        )
        con.execute("CHECKPOINT")
        hand_ten, hand_ten_cpu, hand_ten_values = timed(
            lambda: con.execute(HAND_SQL_TEN).df()
        )
        hand_five, hand_five_cpu, hand_five_values = timed(
            lambda: con.execute(HAND_SQL_FIVE).df()
        )
        frame = con.execute("SELECT * FROM plays").df()
        con.close()
    pandas_ten_seconds, pandas_ten_cpu, pandas_ten_values = timed(pandas_ten, frame)
    pandas_five_seconds, pandas_five_cpu, pandas_five_values = timed(pandas_five, frame)
    print(f"load average at the end: {load_average()}")

    # Every method must compute the same numbers for the comparison to mean
    # anything. Sums of floats in another order can differ in the last bits.
    for name, mine, other, columns in (
        ("hand SQL, ten", "ten", hand_ten_values.set_index("participant_id"), TEN),
        ("pandas, ten", "ten", pandas_ten_values, TEN),
        ("hand SQL, five", "five", hand_five_values.set_index("participant_id"), FIVE),
        ("pandas, five", "five", pandas_five_values, FIVE),
    ):
        for label, run in (("encrypted", encrypted), ("unencrypted", plain)):
            values = run[f"{mine}_values"]
            difference = largest_difference(values[columns], other[columns])
            print(f"  largest difference twinme {label} vs {name}: {difference:.2e}")
            if difference > 1e-9:
                raise SystemExit(f"twinme and {name} disagree by {difference}")

    print("  seconds (wall clock, then CPU):")
    for label, wall, cpu in (
        ("compute_features, ten, encrypted", encrypted["ten"], encrypted["ten_cpu"]),
        ("compute_features, ten, unencrypted", plain["ten"], plain["ten_cpu"]),
        ("compute_features, five, encrypted", encrypted["five"], encrypted["five_cpu"]),
        ("compute_features, five, unencrypted", plain["five"], plain["five_cpu"]),
        ("hand-written DuckDB SQL, ten features", hand_ten, hand_ten_cpu),
        ("hand-written DuckDB SQL, five features", hand_five, hand_five_cpu),
        ("pandas groupby, ten features", pandas_ten_seconds, pandas_ten_cpu),
        ("pandas groupby, five features", pandas_five_seconds, pandas_five_cpu),
        (
            "listening module alone, encrypted",
            encrypted["module"],
            encrypted["module_cpu"],
        ),
        ("listening module alone, unencrypted", plain["module"], plain["module_cpu"]),
    ):
        print(f"  {label:40s} {wall:8.2f} {cpu:8.2f}")
    print("  ratios (twinme = compute_features, encrypted):")
    ten, five = encrypted["ten"], encrypted["five"]
    print(f"  ten:  twinme / hand SQL   {ten / hand_ten:6.2f}  (target <= 1.2)")
    print(f"  ten:  pandas / twinme     {pandas_ten_seconds / ten:6.2f}  (target > 1)")
    print(f"  five: twinme / hand SQL   {five / hand_five:6.2f}  (target <= 1.2)")
    print(
        f"  five: pandas / twinme     {pandas_five_seconds / five:6.2f}  (target > 1)"
    )
    print(f"  ten:  encrypted / plain   {ten / plain['ten']:6.2f}  (target <= 1.15)")
    print(f"  five: encrypted / plain   {five / plain['five']:6.2f}  (target <= 1.15)")
    module_ratio = encrypted["module"] / plain["module"]
    print(f"  module alone, encrypted / plain {module_ratio:6.2f}")
    print("  CPU-time ratios:")
    ten_cpu, five_cpu = encrypted["ten_cpu"], encrypted["five_cpu"]
    print(f"  ten:  twinme / hand SQL   {ten_cpu / hand_ten_cpu:6.2f}")
    print(f"  five: twinme / hand SQL   {five_cpu / hand_five_cpu:6.2f}")
    print(f"  ten:  encrypted / plain   {ten_cpu / plain['ten_cpu']:6.2f}")
    print(f"  five: encrypted / plain   {five_cpu / plain['five_cpu']:6.2f}")


if __name__ == "__main__":
    main()
