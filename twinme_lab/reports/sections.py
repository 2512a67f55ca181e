"""Report sections for communication style, platform features and interests.

The trait report notebook reads the tables once with :func:`load_sections` and
shows them with the ``show_*`` functions; the ``*_frame`` functions return the
same tables as text, so tests can read them without a kernel. Everything is read
through the public API (``features_table``, ``feature_definitions``,
``interests_profile``). A NULL value is never shown as a number: it reads "not
enough messages" (or replies, or data) when it rests on fewer observations than
the feature's minimum, and "not measured" with the reason otherwise.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd
from IPython.display import HTML, Markdown, display

from .. import features, interests
from ..workspace import Workspace

COMMUNICATION_PREFIX = "comm_"

# Feature name prefixes of the platform tables, with the names shown.
PLATFORMS = (
    ("youtube_", "YouTube"),
    ("discord_", "Discord"),
    ("linkedin_", "LinkedIn"),
    ("github_", "GitHub"),
    ("reddit_", "Reddit"),
    ("twitch_", "Twitch"),
    ("spotify_", "Spotify API"),
)

# Rates from English word lists: NULL with enough messages means the text did
# not pass the English check of the communication features.
WORD_LIST_FEATURES = frozenset(
    {
        "comm_first_singular_rate",
        "comm_first_plural_rate",
        "comm_positive_rate",
        "comm_negative_rate",
    }
)
# Local-time features: NULL with enough messages means no time zone is set.
LOCAL_TIME_FEATURES = frozenset({"comm_night_share", "comm_mean_hour"})
# Features whose observations are replies in a conversation, not messages.
REPLY_FEATURES = frozenset({"comm_response_latency"})

# The attribution the Open Database License asks for where AFINN data is shown.
AFINN_NOTICE = (
    "Contains information from AFINN, which is made available here under the ODbL "
    "(Open Database License v1.0, https://opendatacommons.org/licenses/odbl/1-0/). "
    "Positive and negative words: AFINN-en-165 by Finn Årup Nielsen "
    "(https://github.com/fnielsen/afinn)."
)

INTEREST_CATEGORIES = {
    "music_genre": "Music genres",
    "video_topic": "Video topics",
    "subreddit": "Subreddits",
    "language": "Programming languages",
    "community": "Communities",
}

_FORMATS = {
    "characters": "{:.1f}",
    "ratio 0-1": "{:.3f}",
    "minutes": "{:.1f}",
    "hour of day": "{:.1f}",
}

COLUMNS = ["feature", "value", "unit", "observations", "minimum", "description"]


def format_value(
    feature: str, value, n_obs: int, min_obs: int, unit: str, timezone: str | None
) -> str:
    """Return a feature value as report text; NULL becomes a reason, not a number."""
    if value is not None and not pd.isna(value):
        return _FORMATS.get(unit, "{:.3g}").format(value)
    if n_obs < min_obs:
        if feature in REPLY_FEATURES:
            noun = "replies"
        elif feature.startswith(COMMUNICATION_PREFIX):
            noun = "messages"
        else:
            noun = "data"
        return f"not enough {noun} ({n_obs} of {min_obs} needed)"
    if feature in WORD_LIST_FEATURES:
        return "not measured: too few English words"
    if feature in LOCAL_TIME_FEATURES and not timezone:
        return "not measured: no time zone set"
    return "not measured"


def _stored_features(workspace: Workspace, participant_id: str):
    values = features.features_table(workspace, participant_id)
    definitions = features.feature_definitions().set_index("feature")
    return values, definitions


def _feature_rows(
    stored: tuple[pd.DataFrame, pd.DataFrame], prefix: str, timezone: str | None
) -> pd.DataFrame:
    """Return the stored features starting with ``prefix`` as report text."""
    values, definitions = stored
    values = values[values["feature"].str.startswith(prefix)]
    rows = []
    for record in values.itertuples(index=False):
        if record.feature not in definitions.index:
            continue
        definition = definitions.loc[record.feature]
        n_obs = int(record.n_obs) if not pd.isna(record.n_obs) else 0
        rows.append(
            {
                "feature": record.feature,
                "value": format_value(
                    record.feature,
                    record.value,
                    n_obs,
                    int(definition["min_obs"]),
                    definition["unit"],
                    timezone,
                ),
                "unit": definition["unit"],
                "observations": n_obs,
                "minimum": int(definition["min_obs"]),
                "description": definition["description"],
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def communication_frame(
    workspace: Workspace, participant_id: str, timezone: str | None = None
) -> pd.DataFrame:
    """Return the communication-style features, or no rows without any message."""
    return _communication(_stored_features(workspace, participant_id), timezone)


def _communication(stored, timezone: str | None) -> pd.DataFrame:
    frame = _feature_rows(stored, COMMUNICATION_PREFIX, timezone)
    if not len(frame) or frame["observations"].max() == 0:
        return frame.iloc[0:0]
    return frame.reset_index(drop=True)


def platform_frames(
    workspace: Workspace, participant_id: str, timezone: str | None = None
) -> dict[str, pd.DataFrame]:
    """Return per platform its features, for the platforms the participant has data on.

    A platform is listed when at least one of its features rests on one
    observation or more.
    """
    return _platforms(_stored_features(workspace, participant_id), timezone)


def _platforms(stored, timezone: str | None) -> dict[str, pd.DataFrame]:
    found = {}
    for prefix, name in PLATFORMS:
        frame = _feature_rows(stored, prefix, timezone)
        if len(frame) and frame["observations"].max() > 0:
            found[name] = frame.reset_index(drop=True)
    return found


def interests_frames(
    workspace: Workspace, participant_id: str
) -> dict[str, pd.DataFrame]:
    """Return the participant's top interests per category; empty without a profile."""
    profile = interests.interests_profile(workspace, participant_id)
    found = {}
    for category, entries in profile.items():
        if not entries:
            continue
        found[INTEREST_CATEGORIES.get(category, category)] = pd.DataFrame(
            {
                "interest": [entry["label"] for entry in entries],
                "share": [f"{entry['weight']:.0%}" for entry in entries],
                "observations": [entry["n_obs"] for entry in entries],
            }
        )
    return found


@dataclass(frozen=True)
class Sections:
    """The tables of the report's sections beyond the traits."""

    communication: pd.DataFrame
    platforms: dict[str, pd.DataFrame]
    interests: dict[str, pd.DataFrame]


def load_sections(
    workspace: Workspace, participant_id: str, timezone: str | None = None
) -> Sections:
    """Read every section's table over one connection to the workspace."""
    with workspace.keep_open():
        stored = _stored_features(workspace, participant_id)
        return Sections(
            communication=_communication(stored, timezone),
            platforms=_platforms(stored, timezone),
            interests=interests_frames(workspace, participant_id),
        )


def _table(frame: pd.DataFrame) -> None:
    display(HTML(frame.to_html(index=False, escape=True)))


def show_communication(loaded: Sections) -> None:
    """Show the communication-style table, with the AFINN notice beside it."""
    frame = loaded.communication
    if not len(frame):
        display(
            HTML(
                "<p><em>No messages, posts or comments of this participant were "
                "imported.</em></p>"
            )
        )
        return
    _table(frame)
    display(HTML(f"<p><small>{html.escape(AFINN_NOTICE)}</small></p>"))


def show_platforms(loaded: Sections) -> None:
    """Show one feature table per platform the participant has data on."""
    frames = loaded.platforms
    if not frames:
        names = [name for _, name in PLATFORMS]
        listed = ", ".join(names[:-1]) + f" or the {names[-1]}"
        display(HTML(f"<p><em>No data from {html.escape(listed)}.</em></p>"))
        return
    for name, frame in frames.items():
        display(Markdown(f"### {name}"))
        _table(frame)


def show_interests(loaded: Sections) -> None:
    """Show the interests profile; show nothing when the participant has none.

    The profile exists only where the study opted in (see
    :mod:`twinme_lab.interests`), so its absence is not mentioned.
    """
    frames = loaded.interests
    if not frames:
        return
    display(
        Markdown(
            "## Interests\n\n"
            "Top interests per category from platform API data, weighted by "
            "engagement: each share is the label's part of the category's total. "
            "Interests can reveal sensitive categories; this study opted in to "
            "computing them."
        )
    )
    for name, frame in frames.items():
        display(Markdown(f"### {name}"))
        _table(frame)
