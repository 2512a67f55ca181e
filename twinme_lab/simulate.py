"""A synthetic cohort with known Big Five traits, written as real platform exports.

The generative model, step by step:

1. True traits: a multivariate normal with the means, SDs and intercorrelations
   of the 500 people in Dolan et al. (2009), stored in
   ``twinme_lab/data/dolan_2009_big_five.json``.
2. Behaviour: for every feature in ``twinme_lab/data/simulation_effects.json`` a
   latent score with the listed population correlations to the traits. With trait
   correlation matrix R and target correlations r, the latent is
   ``z @ R^-1 r + sqrt(1 - r' R^-1 r) * noise``.
3. Records: each latent sets one behaviour parameter (number of plays, skip
   probability, share of night plays, ...), from which plays and viewings are
   drawn. They are written as Spotify extended streaming history
   (``Streaming_History_Audio_<year>.json``) and Netflix ``ViewingActivity.csv``.
4. Questionnaire: IPIP-50 answers from a one-factor model per scale (loading
   ``item_loading`` on the true trait, reverse-keyed items loading negatively, per
   the instrument's key), cut into the 1-5 response categories.
5. Ceiling per trait: the correlation of the true trait with its best linear
   predictor from the features computed from the records, times the square root
   of the simulated questionnaire scale's Cronbach's alpha. R comes from ordinary
   least squares, adjusted for the number of features. A linear model of these
   features cannot be expected to correlate more strongly than that with the
   questionnaire scores.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .errors import InputError, UsageError

log = logging.getLogger(__name__)

TRAITS = (
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
)
# IPIP-50 scale measuring each trait; neuroticism is the reverse pole of
# emotional stability.
IPIP50_SCALES = {
    "openness": ("intellect_imagination", 1),
    "conscientiousness": ("conscientiousness", 1),
    "extraversion": ("extraversion", 1),
    "agreeableness": ("agreeableness", 1),
    "neuroticism": ("emotional_stability", -1),
}
MAX_PARTICIPANTS = 100_000


@dataclass(frozen=True)
class Design:
    """Settings of the simulated cohort; the defaults are the default design."""

    plays_median: int = 300
    viewings_median: int = 60
    start: str = "2024-01-01"
    days: int = 182
    timezone: str = "Europe/Berlin"
    item_loading: float = 0.65
    # Cumulative-probit thresholds for the five response categories, on the
    # item's latent z scale; they put the mean answer a little above 3.
    thresholds: tuple[float, float, float, float] = (-1.6, -0.75, 0.0, 0.9)


@dataclass
class Cohort:
    """One simulated cohort: truth, generated records, answers and ceilings."""

    seed: int
    design: Design
    participants: list[str]
    traits_z: pd.DataFrame
    trait_scores: pd.DataFrame
    latents: pd.DataFrame
    plays: pd.DataFrame
    viewings: pd.DataFrame
    answers: pd.DataFrame
    features: pd.DataFrame
    alpha: dict[str, float]
    ceilings: pd.DataFrame


def _data_file(name: str) -> dict:
    return json.loads(resources.files("twinme_lab").joinpath("data", name).read_text())


def load_dolan() -> dict:
    """Return the Dolan et al. (2009) means, SDs and correlations, keyed by trait."""
    data = _data_file("dolan_2009_big_five.json")
    names = [name.lower() for name in data["traits"]]
    order = [names.index(trait) for trait in TRAITS]
    corr = np.asarray(data["correlations"], dtype=float)[np.ix_(order, order)]
    return {
        "means": np.array([data["means"][data["traits"][i]] for i in order]),
        "sds": np.array([data["sds"][data["traits"][i]] for i in order]),
        "corr": corr,
        "citation": data["citation"],
    }


def load_effects() -> dict[str, dict[str, float]]:
    """Return feature -> trait -> target correlation from simulation_effects.json."""
    data = _data_file("simulation_effects.json")
    effects = {}
    for feature, entry in data["features"].items():
        unknown = set(entry["effects"]) - set(TRAITS)
        if unknown:
            raise InputError(f"simulation_effects.json: {feature} names {unknown}.")
        effects[feature] = {t: float(entry["effects"].get(t, 0.0)) for t in TRAITS}
    return effects


def ipip50_key() -> dict[int, tuple[str, int]]:
    """Return item -> (scale, key) from the registered IPIP-50 instrument."""
    from .traits import questionnaires

    spec = questionnaires.get_instrument("ipip50")
    key = {}
    for scale in spec.scales:
        for item, sign in scale.items:
            key[item] = (scale.name, sign)
    return key


def draw_traits(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw true traits: z-scores and scores on Dolan et al.'s 1-5 mean-item scale."""
    dolan = load_dolan()
    z = rng.multivariate_normal(np.zeros(5), dolan["corr"], size=n)
    scores = dolan["means"] + z * dolan["sds"]
    return (pd.DataFrame(z, columns=TRAITS), pd.DataFrame(scores, columns=TRAITS))


def draw_latents(
    z: pd.DataFrame, effects: dict[str, dict[str, float]], rng: np.random.Generator
) -> pd.DataFrame:
    """Draw one standard-normal latent per feature with the target correlations."""
    corr = load_dolan()["corr"]
    inverse = np.linalg.inv(corr)
    columns = {}
    for feature, targets in effects.items():
        r = np.array([targets[t] for t in TRAITS])
        weights = inverse @ r
        explained = float(r @ weights)
        if explained >= 1.0:
            raise InputError(
                f"simulation_effects.json: the effects of {feature} explain "
                f"{explained:.2f} of its variance; they must explain less than 1."
            )
        noise = rng.standard_normal(len(z))
        columns[feature] = z.to_numpy() @ weights + math.sqrt(1 - explained) * noise
    return pd.DataFrame(columns, index=z.index)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _local_times(
    rng: np.random.Generator,
    days: np.ndarray,
    count: int,
    night_p: float,
    evening_hours: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Return (day index, second of day) for ``count`` events on the given days."""
    day = rng.choice(days, size=count)
    night = rng.random(count) < night_p
    hour = np.where(
        night,
        rng.integers(0, 6, count),
        rng.integers(evening_hours[0], evening_hours[1], count),
    )
    second = hour * 3600 + rng.integers(0, 3600, count)
    return day, second


def _to_utc(
    start: datetime, day: np.ndarray, second: np.ndarray, zone: str
) -> pd.Series:
    """Convert local (day, second) offsets from ``start`` to UTC timestamps.

    Local times skipped by a daylight-saving change move forward to the first
    valid time, and repeated ones take the later (standard-time) reading.
    """
    local = pd.Timestamp(start) + pd.to_timedelta(day * 86_400 + second, unit="s")
    aware = pd.DatetimeIndex(local).tz_localize(
        zone, nonexistent="shift_forward", ambiguous=np.zeros(len(day), dtype=bool)
    )
    return pd.Series(aware.tz_convert("UTC"))


def _uri(prefix: str, text: str) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    number = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    chars = []
    for _ in range(22):
        number, rest = divmod(number, 62)
        chars.append(alphabet[rest])
    return f"spotify:{prefix}:{''.join(chars)}"


def generate_plays(
    pid: str, latent: pd.Series, rng: np.random.Generator, design: Design
) -> pd.DataFrame:
    """Generate one participant's audio plays from their behaviour latents."""
    start = datetime.fromisoformat(design.start)
    n = max(
        20, int(round(design.plays_median * math.exp(0.5 * latent["listening_hours"])))
    )
    active_share = _logistic(0.8 * latent["listening_active_days"])
    n_days = int(np.clip(round(design.days * active_share), 3, design.days))
    all_days = np.arange(design.days)
    weekday_of = np.array(
        [(start + timedelta(days=int(d))).weekday() for d in all_days]
    )
    chosen = rng.choice(all_days, size=n_days, replace=False)
    weekend_days = chosen[weekday_of[chosen] >= 5]
    weekdays = chosen[weekday_of[chosen] < 5]
    p_weekend = _logistic(_logit(2 / 7) + 0.5 * latent["listening_weekend_share"])
    on_weekend = rng.random(n) < p_weekend
    if len(weekend_days) == 0:
        on_weekend[:] = False
    if len(weekdays) == 0:
        on_weekend[:] = True
    p_night = _logistic(_logit(0.07) + 0.6 * latent["listening_night_share"])
    day = np.empty(n, dtype=int)
    second = np.empty(n, dtype=int)
    for flag, pool in ((True, weekend_days), (False, weekdays)):
        mask = on_weekend == flag
        if mask.any():
            d, s = _local_times(rng, pool, int(mask.sum()), p_night, (7, 24))
            day[mask], second[mask] = d, s

    podcast = rng.random(n) < _logistic(
        _logit(0.04) + 0.8 * latent["listening_podcast_share"]
    )
    n_artists = int(
        np.clip(
            round(30 * math.exp(0.5 * latent["listening_distinct_artists"])), 2, 500
        )
    )
    exponent = math.exp(-0.35 * latent["listening_artist_entropy"])
    # The first artist gets share p_top. The others share the rest by a Zipf law
    # that starts at rank 2, so the first artist is nearly always the most played.
    p_top = _logistic(_logit(0.2) + 0.6 * latent["listening_top_artist_share"])
    rest = 1.0 / np.arange(2, n_artists + 1) ** exponent
    probabilities = np.concatenate([[p_top], (1 - p_top) * rest / rest.sum()])
    artist_index = rng.choice(n_artists, size=n, p=probabilities)
    p_skip = _logistic(_logit(0.25) + 0.6 * latent["listening_skip_rate"])
    skipped = rng.random(n) < p_skip
    music_ms = np.where(
        skipped, rng.integers(2_000, 30_000, n), rng.integers(120_000, 260_000, n)
    )
    podcast_ms = rng.integers(300_000, 3_600_000, n)
    ms = np.where(podcast, podcast_ms, music_ms)

    artist = np.array([f"Sim Artist {pid}-{i:03d}" for i in range(n_artists)])[
        artist_index
    ]
    track_number = rng.integers(1, 12, n)
    show = np.char.add("Sim Show ", rng.integers(1, 6, n).astype(str))
    frame = pd.DataFrame(
        {
            "ended_at": _to_utc(start, day, second, design.timezone),
            "kind": np.where(podcast, "podcast", "music"),
            "ms_played": ms.astype(np.int64),
            "artist_name": np.where(podcast, None, artist),
            "track_name": np.where(
                podcast,
                None,
                np.char.add(np.char.add(artist, " song "), track_number.astype(str)),
            ),
            "album_name": np.where(podcast, None, np.char.add(artist, " album")),
            "show_name": np.where(podcast, show, None),
            "episode_name": np.where(
                podcast,
                np.char.add(np.char.add(show, " episode "), np.arange(n).astype(str)),
                None,
            ),
            "skipped": pd.array(np.where(podcast, None, skipped), dtype="boolean"),
        }
    )
    frame.insert(0, "participant_id", pid)
    return frame.sort_values("ended_at", kind="stable").reset_index(drop=True)


def generate_viewings(
    pid: str, latent: pd.Series, rng: np.random.Generator, design: Design
) -> pd.DataFrame:
    """Generate one participant's Netflix viewings from their behaviour latents."""
    start = datetime.fromisoformat(design.start)
    zone = ZoneInfo(design.timezone)
    target = max(
        8, int(round(design.viewings_median * math.exp(0.5 * latent["viewing_hours"])))
    )
    n_titles = max(2, int(round(8 * math.exp(0.4 * latent["viewing_distinct_titles"]))))
    p_episode = _logistic(_logit(0.7) + 0.6 * latent["viewing_series_share"])
    p_binge = _logistic(_logit(0.2) + 0.8 * latent["viewing_binge_sessions"])
    p_late = _logistic(_logit(0.08) + 0.6 * latent["viewing_late_night_share"])
    n_series = max(1, int(round(n_titles * p_episode)))
    n_films = max(1, n_titles - n_series)
    next_episode = dict.fromkeys(range(n_series), 1)
    rows = []
    used_days: set[int] = set()
    while len(rows) < target:
        day = int(rng.integers(0, design.days))
        late = rng.random() < p_late
        hour = int(rng.integers(0, 4)) if late else int(rng.integers(17, 22))
        moment = start + timedelta(
            days=day, hours=hour, minutes=int(rng.integers(0, 60))
        )
        if rng.random() < p_episode:
            series = int(rng.integers(0, n_series))
            length = int(rng.integers(3, 6)) if rng.random() < p_binge else 1
            if (day, series) in used_days:
                length = 1
            used_days.add((day, series))
            for _ in range(length):
                episode = next_episode[series]
                next_episode[series] += 1
                duration = int(rng.integers(1_300, 3_300))
                rows.append(
                    {
                        "started_at": moment.replace(tzinfo=zone).astimezone(UTC),
                        "duration_s": duration,
                        "title": f"Sim Series {pid}-{series:02d}: Season 1: "
                        f"Chapter {episode} (Episode {episode})",
                        "series_title": f"Sim Series {pid}-{series:02d}",
                        "is_episode": True,
                        "supplemental_type": None,
                    }
                )
                moment += timedelta(seconds=duration + 30)
                if moment.day != (start + timedelta(days=day)).day:
                    break
        else:
            film = int(rng.integers(0, n_films))
            duration = int(rng.integers(4_800, 8_400))
            rows.append(
                {
                    "started_at": moment.replace(tzinfo=zone).astimezone(UTC),
                    "duration_s": duration,
                    "title": f"Sim Film {pid}-{film:02d}",
                    "series_title": None,
                    "is_episode": False,
                    "supplemental_type": None,
                }
            )
    # A few trailers, which a correct pipeline excludes from every feature.
    for _ in range(int(rng.integers(0, 4))):
        day = int(rng.integers(0, design.days))
        moment = start + timedelta(days=day, hours=20)
        rows.append(
            {
                "started_at": moment.replace(tzinfo=zone).astimezone(UTC),
                "duration_s": 40,
                "title": f"Trailer: Sim Film {pid}-00",
                "series_title": None,
                "is_episode": False,
                "supplemental_type": "TRAILER",
            }
        )
    frame = pd.DataFrame(rows)
    frame.insert(0, "participant_id", pid)
    return frame.sort_values("started_at", kind="stable").reset_index(drop=True)


def listening_features(plays: pd.DataFrame, zone: str) -> pd.DataFrame:
    """Compute the listening features of every participant's plays.

    The definitions are those of ``twinme_lab.features.listening``, written again
    here in pandas so that a test can check one against the other. Night is 00:00
    to 05:59 and the weekend is Saturday and Sunday, in local time. Artist
    features count music plays.
    """
    plays = plays.assign(local=plays["ended_at"].dt.tz_convert(zone))
    by_person = plays.groupby("participant_id")
    music = plays[plays["kind"] == "music"]
    artist_counts = music.groupby(["participant_id", "artist_name"]).size()
    totals = artist_counts.groupby(level=0).transform("sum")
    shares = artist_counts / totals
    n_artists = artist_counts.groupby(level=0).size()
    entropy = (-(shares * np.log(shares))).groupby(level=0).sum() / np.log(n_artists)
    entropy[n_artists == 1] = 0.0

    month = music["local"].dt.tz_localize(None).dt.to_period("M")
    month_index = month.dt.year * 12 + month.dt.month
    first_month = month_index.groupby(music["participant_id"]).min()
    span = month_index.groupby(music["participant_id"]).max() - first_month
    first_heard = month_index.groupby(
        [music["participant_id"], music["artist_name"]]
    ).min()
    later = (
        first_heard > first_month.reindex(first_heard.index.get_level_values(0)).values
    )
    new_artists = later.groupby(level=0).sum()
    new_rate = (new_artists / span).where(span > 0)

    skips = music[music["skipped"].notna()]
    podcast_ms = plays["ms_played"].where(plays["kind"] == "podcast", 0)
    total_ms = by_person["ms_played"].sum()
    return pd.DataFrame(
        {
            "listening_hours": total_ms / 3_600_000.0,
            "listening_active_days": by_person["local"]
            .apply(lambda t: t.dt.date.nunique())
            .astype(float),
            "listening_distinct_artists": n_artists.astype(float),
            "listening_artist_entropy": entropy,
            "listening_top_artist_share": shares.groupby(level=0).max(),
            "listening_skip_rate": skips["skipped"]
            .astype(float)
            .groupby(skips["participant_id"])
            .mean(),
            "listening_night_share": (plays["local"].dt.hour < 6)
            .groupby(plays["participant_id"])
            .mean(),
            "listening_weekend_share": (plays["local"].dt.day_of_week >= 5)
            .groupby(plays["participant_id"])
            .mean(),
            "listening_podcast_share": podcast_ms.groupby(plays["participant_id"]).sum()
            / total_ms,
            "listening_new_artist_rate": new_rate.astype(float),
        }
    )


def viewing_features(viewings: pd.DataFrame, zone: str) -> pd.DataFrame:
    """Compute the viewing features of ``twinme_lab.features.viewing`` per person.

    Supplemental rows are excluded, a series counts once as a title, and a binge
    session is a (series, local day) with three or more distinct episodes.
    """
    views = viewings[viewings["supplemental_type"].isna()]
    views = views.assign(
        local=views["started_at"].dt.tz_convert(zone),
        title_key=views["series_title"].fillna(views["title"]),
    )
    by_person = views.groupby("participant_id")
    episodes = views[views["is_episode"]]
    per_day = episodes.groupby(
        [
            episodes["participant_id"],
            episodes["series_title"],
            episodes["local"].dt.date,
        ]
    )["title"].nunique()
    binges = (per_day >= 3).groupby(level=0).sum()
    return pd.DataFrame(
        {
            "viewing_hours": by_person["duration_s"].sum() / 3600.0,
            "viewing_distinct_titles": by_person["title_key"].nunique().astype(float),
            "viewing_series_share": by_person["is_episode"].mean().astype(float),
            "viewing_binge_sessions": binges.reindex(
                by_person.size().index, fill_value=0
            ).astype(float),
            "viewing_late_night_share": (views["local"].dt.hour < 6)
            .groupby(views["participant_id"])
            .mean(),
        }
    )


def generate_answers(
    z: pd.DataFrame, rng: np.random.Generator, design: Design
) -> pd.DataFrame:
    """Generate IPIP-50 answers (1-5) from the true traits and the published key."""
    key = ipip50_key()
    scale_trait = {
        scale: (trait, sign) for trait, (scale, sign) in IPIP50_SCALES.items()
    }
    loading = design.item_loading
    columns = {}
    for item in sorted(key):
        scale, sign = key[item]
        trait, direction = scale_trait[scale]
        latent = sign * direction * loading * z[trait].to_numpy() + math.sqrt(
            1 - loading**2
        ) * rng.standard_normal(len(z))
        # Forward-keyed items of a scale agree with it; the same thresholds apply
        # to every item, so reverse-keyed items have the mirrored distribution.
        columns[item] = 1 + np.searchsorted(np.asarray(design.thresholds), latent)
    return pd.DataFrame(columns, index=z.index).astype(int)


def cronbach_alpha(items: np.ndarray) -> float:
    """Return Cronbach's alpha of a (respondents x items) matrix."""
    k = items.shape[1]
    item_variance = items.var(axis=0, ddof=1).sum()
    total_variance = items.sum(axis=1).var(ddof=1)
    return float(k / (k - 1) * (1 - item_variance / total_variance))


def scale_alphas(answers: pd.DataFrame) -> dict[str, float]:
    """Return Cronbach's alpha of each trait's IPIP-50 scale, items keyed forward."""
    key = ipip50_key()
    result = {}
    for trait, (scale, _) in IPIP50_SCALES.items():
        items = [item for item, (name, _) in key.items() if name == scale]
        keyed = np.column_stack(
            [
                answers[item].to_numpy()
                if key[item][1] > 0
                else 6 - answers[item].to_numpy()
                for item in items
            ]
        )
        result[trait] = cronbach_alpha(keyed.astype(float))
    return result


def compute_ceilings(
    traits_z: pd.DataFrame, features: pd.DataFrame, alpha: dict[str, float]
) -> pd.DataFrame:
    """Return per trait the best-linear-predictor R, adjusted R, alpha and ceiling.

    R comes from ordinary least squares of the true trait on every feature (NaN
    imputed with the feature's mean). Because in-sample R is biased upwards by the
    number of features p, the ceiling uses the adjusted R^2,
    ``1 - (1 - R^2)(n - 1)/(n - p - 1)``. With n <= p + 1 the adjusted R and the
    ceiling are NaN.
    """
    X = features.to_numpy(dtype=float)
    X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
    X = X[:, np.nanstd(X, axis=0) > 0]
    n, p = X.shape
    design_matrix = np.column_stack([np.ones(n), X])
    rows = []
    for trait in TRAITS:
        y = traits_z[trait].to_numpy()
        coef, *_ = np.linalg.lstsq(design_matrix, y, rcond=None)
        fitted = design_matrix @ coef
        r = float(np.corrcoef(fitted, y)[0, 1])
        if n - p - 1 > 0:
            adjusted_r2 = 1 - (1 - r**2) * (n - 1) / (n - p - 1)
            r_adjusted = math.sqrt(max(adjusted_r2, 0.0))
        else:
            # With no more participants than coefficients the fit is exact and
            # says nothing about the population, so the ceiling is unknown.
            r_adjusted = math.nan
        rows.append(
            {
                "trait": trait,
                "r_best_linear": r,
                "r_best_linear_adjusted": r_adjusted,
                "alpha": alpha[trait],
                "ceiling": r_adjusted * math.sqrt(alpha[trait]),
                "n": n,
                "n_features": p,
            }
        )
    return pd.DataFrame(rows)


def participant_ids(n: int, seed: int) -> list[str]:
    """Return the simulated participant ids, e.g. ``sim-s7-0001``."""
    return [f"sim-s{seed}-{i:04d}" for i in range(1, n + 1)]


def simulate_cohort(n: int, seed: int, design: Design | None = None) -> Cohort:
    """Simulate ``n`` participants with the given seed (same seed, same cohort)."""
    if not 10 <= n <= MAX_PARTICIPANTS:
        raise UsageError(
            f"--participants must be between 10 and {MAX_PARTICIPANTS}; got {n}."
        )
    design = design or Design()
    rng = np.random.default_rng(seed)
    effects = load_effects()
    ids = participant_ids(n, seed)
    traits_z, trait_scores = draw_traits(n, rng)
    latents = draw_latents(traits_z, effects, rng)
    for frame in (traits_z, trait_scores, latents):
        frame.index = pd.Index(ids, name="participant_id")
    plays, viewings = [], []
    for pid in ids:
        plays.append(generate_plays(pid, latents.loc[pid], rng, design))
        viewings.append(generate_viewings(pid, latents.loc[pid], rng, design))
    all_plays = pd.concat(plays, ignore_index=True)
    all_viewings = pd.concat(viewings, ignore_index=True)
    features = (
        pd.concat(
            [
                listening_features(all_plays, design.timezone),
                viewing_features(all_viewings, design.timezone),
            ],
            axis=1,
        )
        .reindex(traits_z.index)
        .astype(float)
    )
    answers = generate_answers(traits_z, rng, design)
    alpha = scale_alphas(answers)
    return Cohort(
        seed=seed,
        design=design,
        participants=ids,
        traits_z=traits_z,
        trait_scores=trait_scores,
        latents=latents,
        plays=all_plays,
        viewings=all_viewings,
        answers=answers,
        features=features,
        alpha=alpha,
        ceilings=compute_ceilings(traits_z, features, alpha),
    )


def questionnaire_scores(answers: pd.DataFrame) -> pd.DataFrame:
    """Score the simulated IPIP-50 answers with the registered instrument.

    Returns one column per trait (neuroticism as the reverse pole of emotional
    stability), on the 1-5 mean-item scale.
    """
    from .traits import questionnaires

    spec = questionnaires.get_instrument("ipip50")
    rows = {}
    for pid, row in answers.iterrows():
        scored = questionnaires.score_answers(
            spec, {int(k): float(v) for k, v in row.items()}
        )
        rows[pid] = {s.trait: s.score for s in scored if s.trait in TRAITS}
    return pd.DataFrame.from_dict(rows, orient="index")[list(TRAITS)]


SPOTIFY_KEYS = (
    "ts",
    "platform",
    "ms_played",
    "conn_country",
    "ip_addr",
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "spotify_track_uri",
    "episode_name",
    "episode_show_name",
    "spotify_episode_uri",
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
    "offline_timestamp",
    "incognito_mode",
)
NETFLIX_COLUMNS = (
    "Profile Name",
    "Start Time",
    "Duration",
    "Attributes",
    "Title",
    "Supplemental Video Type",
    "Device Type",
    "Bookmark",
    "Latest Bookmark",
    "Country",
)


def _spotify_record(row) -> dict:
    podcast = row.kind == "podcast"
    ended = row.ended_at
    record = dict.fromkeys(SPOTIFY_KEYS)
    record.update(
        {
            "ts": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "platform": "android",
            "ms_played": int(row.ms_played),
            "conn_country": "DE",
            "ip_addr": "192.0.2.10",
            "reason_start": "trackdone",
            "reason_end": "fwdbtn" if row.skipped is True else "trackdone",
            "shuffle": False,
            "skipped": bool(row.skipped) if not podcast else False,
            "offline": False,
            "offline_timestamp": int(ended.timestamp()),
            "incognito_mode": False,
        }
    )
    if podcast:
        record["episode_name"] = row.episode_name
        record["episode_show_name"] = row.show_name
        record["spotify_episode_uri"] = _uri("episode", row.episode_name)
    else:
        record["master_metadata_track_name"] = row.track_name
        record["master_metadata_album_artist_name"] = row.artist_name
        record["master_metadata_album_album_name"] = row.album_name
        record["spotify_track_uri"] = _uri("track", row.track_name)
    return record


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def write_exports(cohort: Cohort, folder: Path) -> dict[str, Path]:
    """Write each participant's exports and the cohort's IPIP-50 answers.

    Layout: ``<folder>/<participant>/spotify/Streaming_History_Audio_<year>.json``
    (one file per UTC year, as Spotify splits them),
    ``<folder>/<participant>/netflix/ViewingActivity.csv`` and
    ``<folder>/questionnaire_ipip50.csv``. Returns the questionnaire path under
    ``"questionnaire"``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    plays_by_person = dict(tuple(cohort.plays.groupby("participant_id")))
    views_by_person = dict(tuple(cohort.viewings.groupby("participant_id")))
    for pid in cohort.participants:
        spotify = folder / pid / "spotify"
        spotify.mkdir(parents=True, exist_ok=True)
        plays = plays_by_person[pid]
        for year, part in plays.groupby(plays["ended_at"].dt.year):
            records = [_spotify_record(row) for row in part.itertuples(index=False)]
            lines = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
            (spotify / f"Streaming_History_Audio_{year}.json").write_text(
                f"[\n{lines}\n]\n", encoding="utf-8"
            )
        netflix = folder / pid / "netflix"
        netflix.mkdir(parents=True, exist_ok=True)
        views = views_by_person[pid].sort_values("started_at", ascending=False)
        with open(
            netflix / "ViewingActivity.csv", "w", newline="", encoding="utf-8"
        ) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(NETFLIX_COLUMNS)
            for row in views.itertuples(index=False):
                writer.writerow(
                    [
                        "Profile A",
                        row.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                        _hms(int(row.duration_s)),
                        "",
                        row.title,
                        row.supplemental_type
                        if isinstance(row.supplemental_type, str)
                        else "",
                        "Sim TV",
                        _hms(int(row.duration_s)),
                        "Not latest view",
                        "DE (Germany)",
                    ]
                )
    questionnaire = folder / "questionnaire_ipip50.csv"
    with open(questionnaire, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        items = list(cohort.answers.columns)
        writer.writerow(["participant", *items])
        for pid, row in cohort.answers.iterrows():
            writer.writerow([pid, *row.tolist()])
    return {"questionnaire": questionnaire}


def _effects_sha256() -> str:
    text = (
        resources.files("twinme_lab")
        .joinpath("data", "simulation_effects.json")
        .read_bytes()
    )
    return hashlib.sha256(text).hexdigest()


def _check_target(root: Path) -> bool:
    """Return True when ``root`` already holds a workspace without real participants.

    Raises :class:`InputError` when it holds real (non-synthetic) participants.
    """
    from .workspace import META_NAME, open_workspace

    if not (root / META_NAME).exists():
        return False
    workspace = open_workspace(root)
    with workspace.connect() as con:
        real = con.execute(
            "SELECT count(*) FROM participants WHERE NOT synthetic"
        ).fetchone()[0]
    if real:
        raise InputError(
            f"{root} contains real participants ({real}); simulated participants are "
            "never added to a workspace with real data. Give a new folder with "
            "--workspace."
        )
    return True


def _nullable(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def store_cohort(workspace, cohort: Cohort, run_id: str) -> None:
    """Enrol the simulated participants and store truth, features and ceilings.

    Everything is written in one transaction; an id that is already enrolled
    rejects the whole cohort.
    """
    from .store import transaction

    now = datetime.now(UTC)
    with workspace.connect() as con:
        taken = con.execute(
            "SELECT participant_id FROM participants "
            "WHERE participant_id IN (SELECT unnest(?::VARCHAR[]))",
            [cohort.participants],
        ).fetchall()
        if taken:
            raise UsageError(
                f"Participants {', '.join(p for (p,) in taken[:5])} are already "
                "enrolled in this workspace; use another --seed or a new workspace."
            )
        with transaction(con):
            con.executemany(
                "INSERT INTO participants (participant_id, timezone, consent_version, "
                "consent_at, synthetic, created_at) VALUES (?, ?, NULL, NULL, true, ?)",
                [[pid, cohort.design.timezone, now] for pid in cohort.participants],
            )
            con.execute(
                "INSERT INTO simulation_runs VALUES (?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    cohort.seed,
                    len(cohort.participants),
                    json.dumps(asdict(cohort.design)),
                    _effects_sha256(),
                    now,
                ],
            )
            truth = [
                [
                    pid,
                    run_id,
                    trait,
                    float(cohort.traits_z.at[pid, trait]),
                    float(cohort.trait_scores.at[pid, trait]),
                ]
                for pid in cohort.participants
                for trait in TRAITS
            ]
            con.executemany(
                "INSERT INTO simulation_truth VALUES (?, ?, ?, ?, ?)", truth
            )
            features = cohort.features.stack(future_stack=True)
            con.executemany(
                "INSERT INTO simulation_features VALUES (?, ?, ?, ?)",
                [
                    [pid, run_id, feature, None if pd.isna(v) else float(v)]
                    for (pid, feature), v in features.items()
                ],
            )
            con.executemany(
                "INSERT INTO simulation_ceilings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [
                        run_id,
                        row.trait,
                        row.r_best_linear,
                        row.r_best_linear_adjusted,
                        row.alpha,
                        row.ceiling,
                        int(row.n),
                        int(row.n_features),
                    ]
                    for row in cohort.ceilings.itertuples(index=False)
                ],
            )
            workspace.audit(
                con, "simulate", None, {"participants": len(cohort.participants)}
            )


def run_simulation(
    path: str | Path,
    n: int,
    seed: int,
    import_data: bool = True,
    design: Design | None = None,
    progress=None,
) -> dict:
    """Create (or extend) a synthetic workspace, write the exports, import them.

    ``path`` must be a new folder or a workspace holding only synthetic
    participants. The exports go to ``<workspace>/simulated/<run_id>/``. With
    ``import_data`` the Spotify and Netflix files and the IPIP-50 answers are
    imported through the ordinary importers, and features are computed.
    ``progress`` is called with (done, total) after each participant's import.
    """
    from .workspace import init_workspace, open_workspace

    root = Path(path)
    exists = _check_target(root)
    cohort = simulate_cohort(n, seed, design)
    if exists:
        workspace = open_workspace(root)
    else:
        workspace, _ = init_workspace(root)
    run_id = f"sim-s{seed}-n{n}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    store_cohort(workspace, cohort, run_id)
    export_dir = workspace.root / "simulated" / run_id
    paths = write_exports(cohort, export_dir)
    summary = {
        "workspace": str(workspace.root),
        "run_id": run_id,
        "participants": len(cohort.participants),
        "exports": str(export_dir),
        "imported": False,
        "ceilings": cohort.ceilings.to_dict(orient="records"),
    }
    if not import_data:
        return summary

    from .features import compute_features
    from .imports import import_path
    from .traits.questionnaires import import_questionnaire

    for done, pid in enumerate(cohort.participants, start=1):
        import_path(workspace, "spotify", export_dir / pid / "spotify", pid)
        import_path(workspace, "netflix", export_dir / pid / "netflix", pid)
        if progress is not None:
            progress(done, len(cohort.participants))
    import_questionnaire(workspace, paths["questionnaire"], "ipip50")
    compute_features(workspace, cohort.participants)
    summary["imported"] = True
    log.info("simulated and imported %d participants", len(cohort.participants))
    return summary


def ceilings_table(workspace) -> pd.DataFrame:
    """Return the stored ceilings of every simulation run in the workspace."""
    with workspace.connect() as con:
        return con.execute(
            "SELECT * FROM simulation_ceilings ORDER BY run_id, trait"
        ).df()
