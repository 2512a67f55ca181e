"""The ``extract`` command: pull connected participants' platform data."""

from __future__ import annotations

from datetime import datetime

import click

from .. import extract as extract_api
from ..workspace import open_workspace
from .common import (
    emit,
    is_terminal,
    json_option,
    plural,
    set_exit_code,
    table,
    workspace_option,
)

COLUMNS = [
    "participant_id",
    "platform",
    "endpoint",
    "status",
    "items",
    "requests",
    "not_modified",
    "rate_limited",
    "retries",
    "error",
]


@click.command()
@click.option(
    "--participant",
    "participant_id",
    default=None,
    help="Extract only this participant (default: every connected one).",
)
@click.option(
    "--platform",
    default=None,
    type=click.Choice(list(extract_api.EXTRACTOR_NAMES), case_sensitive=False),
    help="Extract only this platform.",
)
@click.option(
    "--interests",
    is_flag=True,
    help="Also compute the interests profile (music genres, video "
    "topics, subreddits, languages, communities). Interests can "
    "reveal sensitive categories: use only when the study's consent "
    "covers them.",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Re-read lists whose platform sends no ETag or Last-Modified even when "
    "read less than 6 hours ago.",
)
@click.option("--quiet", is_flag=True, help="Show no progress bar.")
@workspace_option
@json_option
def extract(
    participant_id: str | None,
    platform: str | None,
    interests: bool,
    refresh: bool,
    quiet: bool,
    workspace: str | None,
) -> None:
    """Fetch what is new from every connected platform into the workspace.

    Requests are paced under each platform's rate limit. A re-run sends cursor
    and conditional (ETag) requests. Lists whose platform sends no validators
    are read again after 6 hours, or at once with --refresh. Until then their
    rows show as skipped, with the time they are due.

    Exit code 0 when every endpoint is ok or empty, 3 when some failed, were
    restricted or need reconnecting (the summary names them).

    Spotify serves only the last 50 plays: older listening history comes from
    the data export ('twinme-lab import').

    Example: twinme-lab extract --participant P001 --platform github
    """
    ws = open_workspace(workspace)
    show = not quiet and is_terminal()
    with extract_api.progress_bar(enabled=show) as progress:
        result = extract_api.extract(
            ws,
            participant_id,
            platform.lower() if platform else None,
            progress=progress,
            interests=interests or None,
            refresh=refresh,
        )
    summary = result.summary()
    rows = [_endpoint_row(row) for row in result.rows]
    text_rows = [{**row, "status": _status_text(row)} for row in rows]
    text = table(text_rows, COLUMNS) + "\n\n" + _summary_text(summary, rows)
    emit({"summary": summary, "endpoints": rows}, text)
    set_exit_code(result.exit_code)


def _endpoint_row(row: dict) -> dict:
    """Select the printed columns of a run log row and add the skip fields.

    ``skipped`` is true for an endpoint that was not requested because it is not
    due yet. Its ``status`` stays that of the last complete read, and
    ``not_due_until`` is the UTC time from which a run requests it again.
    """
    due = row.get("not_due_until")
    return {
        **{k: row.get(k) for k in COLUMNS},
        "skipped": due is not None,
        "not_due_until": due.isoformat(timespec="seconds") if due else None,
    }


def _status_text(row: dict) -> str:
    if not row["skipped"]:
        return row["status"]
    due = datetime.fromisoformat(row["not_due_until"])
    return f"skipped (not due until {due:%Y-%m-%d %H:%M} UTC)"


def _summary_text(summary: dict, rows: list[dict]) -> str:
    counted = sorted(summary["statuses"].items())
    statuses = ", ".join(f"{n} {s}" for s, n in counted) or "none"
    lines = [
        f"Run {summary['run_id']}: {plural(summary['endpoints'], 'endpoint')} "
        f"({statuses}), {plural(summary['items'], 'item')} from "
        f"{plural(summary['requests'], 'request')} "
        f"({summary['not_modified']} answered 304, {summary['rate_limited']} rate "
        "limited)."
    ]
    skipped = sum(row["skipped"] for row in rows)
    if skipped:
        lines.append(
            f"Skipped {plural(skipped, 'endpoint')} not due yet, because the "
            "platform sends no ETag or Last-Modified and the last full read is "
            "recent. Run with --refresh to read them now."
        )
    if summary["problems"]:
        lines.append("Not complete: " + "; ".join(summary["problems"]) + ".")
    return "\n".join(lines)


def register(group: click.Group) -> None:
    group.add_command(extract)
