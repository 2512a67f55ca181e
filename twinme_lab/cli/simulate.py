"""The ``simulate`` command: a synthetic cohort with known traits."""

from __future__ import annotations

import click

from .. import simulate as simulate_api
from .common import emit, is_terminal, json_option, plural, table


@click.command()
@click.option(
    "--participants",
    "n",
    type=click.IntRange(10, None),
    required=True,
    help="Number of simulated participants (at least 10).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Random seed; the same seed gives the same cohort.",
)
@click.option(
    "--workspace",
    "workspace",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder for a new workspace (or one holding only synthetic participants).",
)
@click.option(
    "--no-import",
    "no_import",
    is_flag=True,
    help="Only write the export files; do not import them.",
)
@json_option
def simulate(n: int, seed: int, workspace: str, no_import: bool) -> None:
    """Create a synthetic cohort with known Big Five traits.

    Writes Spotify extended streaming history, Netflix ViewingActivity.csv and
    IPIP-50 answers for every simulated participant under
    WORKSPACE/simulated/, then imports them with the ordinary importers and
    computes features, unless --no-import. Every simulated participant is marked
    synthetic, and a workspace that holds real participants is refused. The true
    traits and each trait's ceiling are stored in the workspace.

    Example: twinme-lab simulate --participants 200 --seed 1 --workspace sim
    """
    progress = None
    if is_terminal() and not no_import:

        def progress(done: int, total: int) -> None:
            click.echo(f"\rImported {done}/{total} participants", nl=False, err=True)

    summary = simulate_api.run_simulation(
        workspace, n, seed, import_data=not no_import, progress=progress
    )
    if progress is not None:
        click.echo("", err=True)
    rows = [
        {
            key: (round(value, 3) if isinstance(value, float) else value)
            for key, value in row.items()
        }
        for row in summary["ceilings"]
    ]
    action = "imported" if summary["imported"] else "written (not imported)"
    emit(
        summary,
        f"Simulated {plural(summary['participants'], 'participant')} in "
        f"{summary['workspace']}; exports {action} under {summary['exports']}.\n"
        + table(rows, ["trait", "r_best_linear_adjusted", "alpha", "ceiling"]),
    )


def register(group: click.Group) -> None:
    group.add_command(simulate)
