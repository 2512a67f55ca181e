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
    if summary.ignored_files:
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


def register(group: click.Group) -> None:
    group.add_command(import_group)
