"""Commands for questionnaires, features and trait scores."""

from __future__ import annotations

import click

from .. import features as features_api
from ..traits import questionnaires as questionnaire_api
from ..traits import scoring as scoring_api
from ..workspace import open_workspace
from .common import emit, json_option, plural, table, workspace_option


@click.group()
def questionnaire() -> None:
    """Import questionnaire answers and check scale reliability."""


@questionnaire.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--instrument",
    required=True,
    type=click.Choice(sorted(questionnaire_api.INSTRUMENTS)),
    help="Questionnaire in the file: ipip50 (50 items, answers 1-5), "
    "ipip_neo_120 (120 items, answers 1-5) or tipi (10 items, answers 1-7).",
)
@workspace_option
@json_option
def questionnaire_import(path: str, instrument: str, workspace: str | None) -> None:
    """Import answers from the CSV file PATH and score every scale.

    The file has a 'participant' column and one column per item, named by its
    number in the instrument's published order ('1' .. '50' or 'item1' ..
    'item50'); an empty cell is an unanswered item. Any invalid cell or unknown
    participant rejects the whole file. Importing again replaces a participant's
    earlier answers for that instrument.

    Example: twinme-lab questionnaire import answers.csv --instrument ipip50
    """
    ws = open_workspace(workspace)
    summary = questionnaire_api.import_questionnaire(ws, path, instrument)
    lines = [
        f"Imported {summary['instrument']} answers for "
        f"{plural(summary['participants'], 'participant')} from {summary['file']} "
        f"({plural(summary['answers'], 'answer')}, "
        f"{summary['missing_answers']} missing)."
    ]
    for scale, counts in summary["scales"].items():
        line = f"  {scale}: {counts['scored']} scored, {counts['null']} without a score"
        # A scale score is NULL only when too many of its items are unanswered.
        if counts["null"]:
            line += " (too many items missing)"
        lines.append(line)
    emit(summary, "\n".join(lines))


@questionnaire.command("reliability")
@click.option(
    "--instrument",
    required=True,
    type=click.Choice(sorted(questionnaire_api.INSTRUMENTS)),
    help="Questionnaire to report on.",
)
@workspace_option
@json_option
def questionnaire_reliability(instrument: str, workspace: str | None) -> None:
    """Print each scale's reliability in the cohort.

    IPIP-50 scales get Cronbach's alpha; TIPI scales, two items each, get the
    correlation between their two items.

    Example: twinme-lab questionnaire reliability --instrument ipip50
    """
    ws = open_workspace(workspace)
    frame = questionnaire_api.reliability(ws, instrument)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        if row["value"] is not None:
            row["value"] = round(row["value"], 3)
    emit(
        {"reliability": rows},
        table(rows, ["scale", "statistic", "value", "n_participants", "n_items"]),
    )


@click.command("features")
@click.option(
    "--participant",
    "participant_ids",
    multiple=True,
    help="Participant to compute; repeat for several. Default: all.",
)
@click.option(
    "--feature",
    "feature_names",
    metavar="NAME",
    multiple=True,
    help="Feature to compute, e.g. listening_hours; repeat for several. Only "
    "these features' stored rows are replaced. Default: every feature.",
)
@workspace_option
@json_option
def features(
    participant_ids: tuple[str, ...],
    feature_names: tuple[str, ...],
    workspace: str | None,
) -> None:
    """Compute behavioural features and replace the stored ones.

    Prints, per feature, how many participants got a value and how many got
    NULL (no data, too few observations, or no time zone for a time-of-day
    feature).

    Example: twinme-lab features --participant P001 --feature listening_hours
    """
    ws = open_workspace(workspace)
    summary = features_api.compute_features(
        ws, list(participant_ids) or None, list(feature_names) or None
    )
    rows = [
        {"feature": name, "with_value": c["value"], "null": c["null"]}
        for name, c in summary["features"].items()
    ]
    text = (
        "Computed features for "
        f"{plural(len(summary['participants']), 'participant')}.\n"
        + table(rows, ["feature", "with_value", "null"])
    )
    emit(summary, text)


@click.command("score")
@click.option(
    "--mapping",
    "mapping_version",
    default=None,
    help="Trait mapping version to use, e.g. default-1. Default: the "
    "workspace's chosen mapping, else the shipped default.",
)
@click.option(
    "--participant",
    "participant_ids",
    multiple=True,
    help="Participant to score; repeat for several. Default: all.",
)
@workspace_option
@json_option
def score(
    mapping_version: str | None, participant_ids: tuple[str, ...], workspace: str | None
) -> None:
    """Score the Big Five traits from the stored features.

    Each trait score is the weighted mean of feature z-scores, standardized
    against the cohort when enough participants have the feature (30 in the
    default-1 mapping) and otherwise against the mapping's reference values.
    Coverage is the share of the trait's mapping weight that had data. A trait
    without evidence stays empty (NULL). Run 'twinme-lab features' first.

    Example: twinme-lab score --mapping default-1 --json
    """
    ws = open_workspace(workspace)
    summary = scoring_api.score(ws, mapping_version, list(participant_ids) or None)
    rows = [
        {"trait": trait, "scored": c["scored"], "null": c["null"]}
        for trait, c in summary["traits"].items()
    ]
    text = (
        f"Scored {plural(summary['participants'], 'participant')} with mapping "
        f"{summary['mapping_version']} (run {summary['run_id']}).\n"
        + table(rows, ["trait", "scored", "null"])
    )
    emit(summary, text)


def register(group: click.Group) -> None:
    group.add_command(questionnaire)
    group.add_command(features)
    group.add_command(score)
