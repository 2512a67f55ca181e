"""Commands for platform connections: connect, disconnect, connections, doctor,
rotate-key and scaffold."""

from __future__ import annotations

from pathlib import Path

import click

from .. import doctor as doctor_api
from .. import oauth as oauth_api
from .. import platforms, rotation
from ..errors import EXIT_REFUSED
from ..scaffold import scaffold as scaffold_api
from .common import emit, json_option, plural, set_exit_code, table, workspace_option


class OAuthPlatform(click.Choice):
    """A platform with an OAuth connection, case-insensitive.

    The choices listed are the OAuth platforms only. A platform without an API
    (Netflix) raises a usage error that names where its data comes from instead.
    """

    def __init__(self) -> None:
        super().__init__(list(platforms.PLATFORM_NAMES), case_sensitive=False)

    def convert(self, value, param, ctx):
        name = str(value).strip().lower()
        if name in platforms.NO_API:
            raise click.UsageError(platforms.NO_API_MESSAGES[name], ctx)
        return super().convert(value, param, ctx)


_PLATFORM = click.argument("platform", type=OAuthPlatform())


def _open(workspace: str | None):
    ws, recovered = rotation.open_recovering(workspace)
    if recovered:
        if recovered.get("new_key"):
            click.echo(
                "An interrupted key rotation was completed. The new key is shown "
                "once; store it and set TWINME_KEY to it:\n"
                f"{recovered['new_key']}",
                err=True,
            )
        else:
            click.echo(
                f"An interrupted key rotation was {recovered['state']}.", err=True
            )
    return ws


@click.command()
@_PLATFORM
@click.option(
    "--participant",
    "participant_id",
    required=True,
    help="Participant id to connect the account to.",
)
@click.option(
    "--no-browser",
    is_flag=True,
    help="Print the authorization URL and read the address the browser "
    "ends on from a hidden prompt (for remote JupyterLab).",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to wait for the browser callback.",
)
@click.option(
    "--scope",
    "optional_scopes",
    multiple=True,
    help="An optional scope to request as well (repeatable).",
)
@workspace_option
@json_option
def connect(
    platform: str,
    participant_id: str,
    no_browser: bool,
    timeout: float,
    optional_scopes: tuple[str, ...],
    workspace: str | None,
) -> None:
    """Connect PARTICIPANT's PLATFORM account (authorization code flow).

    The authorization URL opens in the browser chosen by the BROWSER variable;
    the platform is asked to show its account chooser, so the participant signs
    in with their own account.

    Example: twinme-lab connect spotify --participant P001
    """
    ws = _open(workspace)
    result = oauth_api.connect(
        ws,
        platform,
        participant_id,
        open_browser=not no_browser,
        timeout=timeout,
        optional_scopes=optional_scopes,
    )
    origin = " (sandbox)" if result["origin"] == "sandbox" else ""
    emit(
        result,
        f"Connected {participant_id} on {platform}{origin}; granted "
        f"scopes: {result['granted_scopes']}.",
    )


@click.command()
@_PLATFORM
@click.option(
    "--participant",
    "participant_id",
    required=True,
    help="Participant id whose connection is removed.",
)
@workspace_option
@json_option
def disconnect(platform: str, participant_id: str, workspace: str | None) -> None:
    """Revoke PARTICIPANT's PLATFORM tokens at the platform and delete them."""
    ws = _open(workspace)
    result = oauth_api.disconnect(ws, platform, participant_id)
    emit(result, f"Disconnected {participant_id} on {platform}. {result['message']}")


@click.command()
@click.option(
    "--participant",
    "participant_id",
    default=None,
    help="List only this participant's connections.",
)
@workspace_option
@json_option
def connections(participant_id: str | None, workspace: str | None) -> None:
    """List connections and their status; never shows a token."""
    ws = _open(workspace)
    rows = oauth_api.connections(ws, participant_id)
    for row in rows:
        if row["token_error"]:
            row["status_shown"] = "token unreadable"
        elif row["status_reason"] and row["status"] != "connected":
            row["status_shown"] = f"{row['status']} ({row['status_reason']})"
        else:
            row["status_shown"] = row["status"]
    emit(
        {"connections": [dict(r) for r in rows]},
        table(
            rows,
            [
                "participant_id",
                "platform",
                "origin",
                "status_shown",
                "granted_scopes",
                "consented_at",
                "last_extraction_at",
            ],
        ),
    )


@click.command()
@click.option(
    "--platform",
    "platform_names",
    multiple=True,
    type=click.Choice(list(platforms.PLATFORM_NAMES), case_sensitive=False),
    help="Check only this platform (repeatable); its client must be set.",
)
@workspace_option
@json_option
def doctor(platform_names: tuple[str, ...], workspace: str | None) -> None:
    """Check the set-up and list what to fix; exit 1 when something must be fixed."""
    findings = doctor_api.run(workspace, list(platform_names) or None)
    lines = []
    for finding in findings:
        where = f"[{finding.platform}] " if finding.platform else ""
        lines.append(
            f"{finding.level.upper():5} {finding.check}: {where}{finding.message}"
        )
    emit(
        {
            "findings": [f.as_dict() for f in findings],
            "must_fix": doctor_api.must_fix(findings),
        },
        "\n".join(lines),
    )
    if doctor_api.must_fix(findings):
        set_exit_code(EXIT_REFUSED)


@click.command("rotate-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@workspace_option
@json_option
def rotate_key(yes: bool, workspace: str | None) -> None:
    """Replace the workspace key, rebuilding the database and re-wrapping tokens.

    The new key is written where the old one was found. When the old key came
    from TWINME_KEY, the new key is printed once: store it before closing the
    terminal. The old key no longer opens the workspace afterwards.
    """
    ws = _open(workspace)
    if not yes:
        click.confirm(f"Rotate the key of {ws.root}?", abort=True, err=True)
    result = rotation.rotate_key(ws)
    summary = {k: v for k, v in result.items() if k != "new_key"}
    text = (
        f"Rotated the key ({result['old_key_id']} -> {result['new_key_id']}); "
        f"{plural(result['rewrapped'], 'connection')} re-wrapped."
    )
    if result["key_file"]:
        text += (
            f" The new key is in {result['key_file']}: back it up now, and "
            "replace any copy of the old key, which no longer opens the workspace."
        )
    emit(summary, text)
    if result["new_key"]:
        click.echo(
            "The old key came from TWINME_KEY. The new key is shown once; store it "
            f"and set TWINME_KEY to it:\n{result['new_key']}",
            err=True,
        )


@click.command()
@click.argument("name")
@click.option("--display-name", default=None, help="Name shown to users.")
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Repository root to write into.",
)
@json_option
def scaffold(name: str, display_name: str | None, root: str) -> None:
    """Write a new platform module, its test and a sample config."""
    written = scaffold_api(name, Path(root), display_name)
    emit(
        {"written": [str(p) for p in written]},
        "Wrote:\n"
        + "\n".join(f"  {p}" for p in written)
        + f"\nAdd {name!r} to PLATFORM_NAMES in twinme_lab/platforms/__init__.py.",
    )


def register(group: click.Group) -> None:
    for command in (connect, disconnect, connections, doctor, rotate_key, scaffold):
        group.add_command(command)
