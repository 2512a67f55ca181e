"""Commands for the workspace itself: init, participants, forget."""

from __future__ import annotations

import click

from .. import participants as participants_api
from ..workspace import init_workspace, open_workspace
from .common import emit, json_option, plural, table, workspace_option


@click.command()
@workspace_option
@json_option
def init(workspace: str | None) -> None:
    """Create an encrypted workspace and its key.

    The key is taken from TWINME_KEY or TWINME_KEY_FILE when set; otherwise a new
    key file is written in the user config directory with mode 0600. Back it up:
    a lost key is a lost study.

    Example: twinme-lab init --workspace studies/pilot
    """
    ws, origin = init_workspace(workspace)
    emit(
        {
            "workspace": str(ws.root),
            "database": str(ws.db_path),
            "key": origin,
            "workspace_id": ws.workspace_id,
        },
        f"Created {ws.db_path}, encrypted with the key from {origin}.\n"
        "Back the key up now; without it the workspace cannot be opened.",
    )


def _reject_blank(ctx: click.Context, param: click.Parameter, value: str | None):
    """Reject an option given as an empty or whitespace-only string."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            "must not be empty or whitespace; leave the option out when unknown."
        )
    return value


@click.group()
def participants() -> None:
    """Enrol and list participants."""


@participants.command("add")
@click.argument("participant_id")
@click.option(
    "--timezone",
    "zone",
    default=None,
    callback=_reject_blank,
    help="IANA time zone, e.g. Europe/Berlin; needed for time-of-day features.",
)
@click.option(
    "--consent",
    "consent",
    default=None,
    callback=_reject_blank,
    help="Version of the consent form the participant signed. Leave it out when "
    "unknown.",
)
@workspace_option
@json_option
def participants_add(
    participant_id: str, zone: str | None, consent: str | None, workspace: str | None
) -> None:
    """Enrol PARTICIPANT_ID (a pseudonymous code, never a name)."""
    ws = open_workspace(workspace)
    record = participants_api.add(ws, participant_id, zone, consent)
    emit(record, f"Enrolled {participant_id}.")


@participants.command("list")
@workspace_option
@json_option
def participants_list(workspace: str | None) -> None:
    """List enrolled participants with their time zone and consent."""
    ws = open_workspace(workspace)
    rows = participants_api.list_participants(ws)
    emit(
        {"participants": rows},
        table(
            rows,
            [
                "participant_id",
                "timezone",
                "consent_version",
                "consent_at",
                "synthetic",
            ],
        ),
    )


@click.command()
@click.argument("participant_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@workspace_option
@json_option
def forget(participant_id: str, yes: bool, workspace: str | None) -> None:
    """Delete PARTICIPANT_ID everywhere and rebuild the database file.

    Rows, raw records, scores, score history, connections and reports go; the
    audit table keeps only the pseudonymous id and counts.
    """
    ws = open_workspace(workspace)
    if not yes:
        click.confirm(
            f"Delete every record of {participant_id} in {ws.root}? This cannot be "
            "undone.",
            abort=True,
            err=True,
        )
    result = participants_api.forget(ws, participant_id)
    emit(
        result,
        f"Forgot {participant_id}: "
        f"{plural(sum(result['rows_deleted'].values()), 'row')} deleted, database "
        "rebuilt."
        + (
            f"\nDeleted {plural(len(result['exports_deleted']), 'export file')}; run "
            "'twinme-lab export' again."
            if result["exports_deleted"]
            else ""
        ),
    )


def register(group: click.Group) -> None:
    group.add_command(init)
    group.add_command(participants)
    group.add_command(forget)
