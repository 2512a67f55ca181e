"""Commands for trait reports and the demo: report, demo."""

from __future__ import annotations

import click

from ..errors import EXIT_INTERRUPTED, EXIT_PARTIAL, TwinMeError, UsageError
from ..workspace import open_workspace
from .common import emit, is_terminal, json_option, set_exit_code, workspace_option


@click.command()
@click.option(
    "--participant",
    "participant_id",
    default=None,
    help="Participant id to write the report of.",
)
@click.option(
    "--all",
    "all_participants",
    is_flag=True,
    help="Write the reports of every enrolled participant.",
)
@click.option(
    "--mapping",
    default=None,
    help="Mapping version the scores were computed with. Default: the "
    "version stored with the scores.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Reports run at the same time with --all. Default: the number of cores.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --all, rewrite reports that match the current data.",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="With --all, run the reports on the Dask cluster whose scheduler is at "
    "ADDRESS (tls://HOST:PORT, or tcp:// on loopback only). Each worker needs "
    "TWINME_DATABASE_KEY in its environment and the workspace at the same path. "
    "Needs the dask extra.",
)
@workspace_option
@json_option
def report(
    participant_id: str | None,
    all_participants: bool,
    mapping: str | None,
    jobs: int | None,
    force: bool,
    scheduler: str | None,
    workspace: str | None,
) -> None:
    """Run the trait report notebook and write reports/ID/.

    Each report folder gets trait_report.ipynb (executed), trait_report.html
    (standalone, without code) and trait_scores.json. With --all, a participant
    whose report already matches the current data and mapping is skipped. A
    failed report does not stop the others, and its error is kept in
    report_error.txt beside it.

    Example: twinme-lab report --participant P01
    """
    if bool(participant_id) == all_participants:
        raise UsageError("Give either --participant ID or --all.")
    if scheduler and not all_participants:
        raise UsageError("--scheduler works with --all only.")
    # papermill and nbconvert take seconds to import; only this command needs them.
    from ..reports import run_report

    ws = open_workspace(workspace)
    if participant_id:
        paths = run_report(ws, participant_id, mapping)
        emit(
            paths.as_dict(),
            f"Wrote the report of {participant_id}:\n"
            f"  {paths.html}\n  {paths.notebook}\n  {paths.scores}",
        )
        return
    _report_all(ws, mapping, jobs, force, scheduler)


def _report_all(
    ws, mapping: str | None, jobs: int | None, force: bool, scheduler: str | None
) -> None:
    from tqdm import tqdm

    from .. import participants
    from ..reports.batch import run_reports

    total = len(participants.list_participants(ws))
    with tqdm(
        total=total, unit="report", disable=not is_terminal(), leave=False
    ) as bar:

        def advance(outcome) -> None:
            bar.set_postfix_str(f"{outcome.participant_id} {outcome.status}")
            bar.update(1)

        try:
            result = run_reports(
                ws,
                mapping=mapping,
                jobs=jobs,
                force=force,
                progress=advance,
                scheduler=scheduler,
            )
        except UsageError as exc:
            # run_on_cluster raises UsageError, with the OSError as its context,
            # when it cannot connect to the scheduler. An unreachable scheduler
            # is not a misuse of the command, so the exit code is 1, not 2.
            if scheduler is None or not isinstance(exc.__context__, OSError):
                raise
            raise TwinMeError(
                f"{exc} No report was written. Start the scheduler and its "
                "workers, or leave out --scheduler to write the reports on this "
                "machine."
            ) from None
    lines = [
        f"Reports: {result.count('written')} written, "
        f"{result.count('skipped')} up to date, {result.count('failed')} failed."
    ]
    for outcome in result.failed:
        lines.append(f"  {outcome.participant_id}: {outcome.error}")
    if result.interrupted:
        lines.append(
            f"Interrupted: {result.count('interrupted')} not written. Run the "
            "same command again to write them; written reports are skipped."
        )
    emit(result.as_dict(), "\n".join(lines))
    if result.interrupted:
        set_exit_code(EXIT_INTERRUPTED)
    elif result.failed:
        set_exit_code(EXIT_PARTIAL)


@click.command()
@click.option(
    "--workspace",
    "workspace",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of the demo workspace. Default: data/workspace-demo. An "
    "earlier demo workspace there is replaced.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Reports run at the same time. Default: the number of cores.",
)
@json_option
def demo(workspace: str | None, jobs: int | None) -> None:
    """Build a fresh demo workspace from data/samples/ and write its reports.

    Enrols four sample participants and imports their exports (Spotify, Netflix,
    YouTube Takeout, Discord, LinkedIn) and IPIP-50 answers. Starts the local
    sandbox on 127.0.0.1, connects two sandbox participants by OAuth and
    extracts their data. Then computes features, scores traits and writes one
    report per participant. Runs offline. Without TWINME_KEY or TWINME_KEY_FILE
    the demo workspace gets its own key file in the user config directory.
    """
    from .. import demo as demo_api

    result = demo_api.build_demo(workspace, jobs=jobs)
    lines = [f"Demo workspace: {result.workspace} (key from {result.key_origin})"]
    for outcome in result.reports.outcomes:
        where = outcome.html if outcome.status != "failed" else outcome.error
        lines.append(f"  {outcome.participant_id}: {outcome.status}  {where}")
    seconds = ", ".join(
        f"{step} {value:.1f} s" for step, value in result.seconds.items()
    )
    lines.append(f"Time: {seconds}")
    lines.append("Open the HTML files in a browser; they work offline.")
    emit(result.as_dict(), "\n".join(lines))
    if result.reports.failed:
        set_exit_code(EXIT_PARTIAL)


def register(group: click.Group) -> None:
    group.add_command(report)
    group.add_command(demo)
