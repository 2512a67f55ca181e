"""``twinme-lab import PLATFORM PATH``: import platform exports for a participant."""

from __future__ import annotations

import click

from ..imports import import_path
from ..workspace import open_workspace
from .common import emit, json_option, workspace_option


def _run(
    workspace: str | None, platform: str, path: str, participant: str, **options
) -> None:
    ws = open_workspace(workspace)
    summary = import_path(ws, platform, path, participant, **options)
    lines = summary.lines()
    if summary.ignored_files == 1:
        lines.append(f"1 other file was not a {platform} history file and was ignored.")
    elif summary.ignored_files:
        lines.append(
            f"{summary.ignored_files} other files were not {platform} "
            "history files and were ignored."
        )
    emit(summary.to_dict(), "\n".join(lines))


@click.group("import")
def import_group() -> None:
    """Import platform exports (files, folders or the ZIP the platform sent).

    Every file is checked before anything is stored, and the import is one
    transaction: a malformed file adds nothing. Importing the same export again
    adds nothing, and a later export that overlaps an earlier one adds only the
    new records.
    """


@import_group.command("spotify")
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--participant",
    required=True,
    help="Id of the enrolled participant the export belongs to.",
)
@workspace_option
@json_option
def import_spotify(path: str, participant: str, workspace: str | None) -> None:
    """Import a Spotify export at PATH (a file, a folder or the ZIP).

    Reads the account data (StreamingHistory*.json, including the music, podcast
    and audiobook files), the extended streaming history
    (Streaming_History_Audio_*.json, Streaming_History_Video_*.json, endsong_*.json)
    and YourLibrary.json. Other files in a folder or ZIP are ignored. IP addresses,
    user agents, usernames, countries and platforms are not stored.

    \b
    Example:
        twinme-lab import spotify "my_spotify_data.zip" --participant P001
    """
    _run(workspace, "spotify", path, participant)


@import_group.command("netflix")
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--participant",
    required=True,
    help="Id of the enrolled participant the export belongs to.",
)
@click.option(
    "--profile",
    default=None,
    help="ViewingActivity.csv profile to import; needed when the file "
    "contains more than one profile. Other profiles' rows are "
    "never stored.",
)
@click.option(
    "--date-order",
    "date_order",
    type=click.Choice(["mdy", "dmy", "ymd"]),
    default=None,
    help="Order of the dates in NetflixViewingHistory.csv: mdy "
    "(2/5/19, US), dmy (05.02.2019) or ymd (2019-02-05). Default: "
    "decided from the whole column.",
)
@workspace_option
@json_option
def import_netflix(
    path: str,
    participant: str,
    profile: str | None,
    date_order: str | None,
    workspace: str | None,
) -> None:
    """Import a Netflix export at PATH (a file, a folder or the ZIP).

    Reads ViewingActivity.csv (one profile's rows; trailers, hooks, recaps and
    other supplemental videos are stored but marked and never count as viewing)
    and NetflixViewingHistory.csv (dates without time).

    \b
    Example:
        twinme-lab import netflix netflix-report.zip --participant P001 \\
            --profile "Profile A"
    """
    _run(
        workspace, "netflix", path, participant, profile=profile, date_order=date_order
    )


def participant_option(func):
    """Add the required ``--participant ID`` option."""
    return click.option(
        "--participant",
        required=True,
        help="Id of the enrolled participant the export belongs to.",
    )(func)


def keep_text_option(func):
    """Add ``--keep-text``: store written text as well as the counts from it."""
    return click.option(
        "--keep-text",
        "keep_text",
        is_flag=True,
        help="Also store the text of messages, posts, comments and searches "
        "(recorded in the audit log). Default: store only the counts measured "
        "from it.",
    )(func)


@import_group.command("youtube")
@click.argument("path", type=click.Path(exists=True))
@participant_option
@keep_text_option
@workspace_option
@json_option
def import_youtube(
    path: str, participant: str, keep_text: bool, workspace: str | None
) -> None:
    """Import a Google Takeout YouTube history at PATH (file, folder or ZIP).

    Reads watch-history.json and search-history.json. Ads (rows from Google Ads)
    are kept apart and never count as watching. HTML history files are rejected:
    choose JSON as the history format in Takeout and export again.

    \b
    Example:
        twinme-lab import youtube takeout-20240101.zip --participant P001
    """
    _run(workspace, "youtube", path, participant, keep_text=keep_text)


@import_group.command("discord")
@click.argument("path", type=click.Path(exists=True))
@participant_option
@keep_text_option
@workspace_option
@json_option
def import_discord(
    path: str, participant: str, keep_text: bool, workspace: str | None
) -> None:
    """Import a Discord data package at PATH (file, folder or ZIP).

    Reads both layouts: Messages/<channel id>/messages.csv and
    messages/c<channel id>/messages.json, with channel.json for the channel kind.
    Other people (message partners, mentioned users) are stored only as keyed
    pseudonyms, never by name or id.

    \b
    Example:
        twinme-lab import discord package.zip --participant P001
    """
    _run(workspace, "discord", path, participant, keep_text=keep_text)


@import_group.command("linkedin")
@click.argument("path", type=click.Path(exists=True))
@participant_option
@keep_text_option
@workspace_option
@json_option
def import_linkedin(
    path: str, participant: str, keep_text: bool, workspace: str | None
) -> None:
    """Import a LinkedIn data export at PATH (file, folder or ZIP).

    Reads Connections, Positions, Education, Skills, Profile, Invitations,
    Shares, Comments, Reactions and messages CSV files. Contacts and message
    partners are stored only as keyed pseudonyms, never by name, e-mail address
    or profile URL.

    \b
    Example:
        twinme-lab import linkedin Basic_LinkedInDataExport.zip --participant P001
    """
    _run(workspace, "linkedin", path, participant, keep_text=keep_text)


def register(group: click.Group) -> None:
    group.add_command(import_group)
