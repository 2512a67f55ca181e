"""Commands for tuning trait mappings, choosing one, and exporting scores."""

from __future__ import annotations

import click

from ..traits import mapping as mapping_api
from ..traits import norms as norms_api
from ..traits import questionnaires as questionnaire_api
from ..workspace import open_workspace
from .common import emit, json_option, plural, table, workspace_option

# The models tune accepts; scikit-learn itself loads only when tune runs.
MODELS = ("ridge", "elasticnet")


def _rounded(row: dict) -> dict:
    return {
        key: round(value, 3) if isinstance(value, float) else value
        for key, value in row.items()
    }


@click.command()
@click.option(
    "--base-mapping",
    default=None,
    help="Mapping version the tuned one starts from. Default: the workspace's mapping.",
)
@click.option(
    "--instrument",
    type=click.Choice(sorted(questionnaire_api.INSTRUMENTS)),
    default="ipip50",
    show_default=True,
    help="Questionnaire whose trait scores are the target.",
)
@click.option(
    "--feature",
    "feature_set",
    multiple=True,
    help="Feature to use (repeat the option); default: every feature.",
)
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default="ridge",
    show_default=True,
    help="Penalized linear model.",
)
@click.option(
    "--outer-folds",
    type=click.IntRange(2, None),
    default=5,
    show_default=True,
    help="Folds of the outer cross-validation.",
)
@click.option(
    "--inner-folds",
    type=click.IntRange(2, None),
    default=5,
    show_default=True,
    help="Folds of the inner (tuning) cross-validation.",
)
@click.option(
    "--permutations",
    type=click.IntRange(0, None),
    default=100,
    show_default=True,
    help="Shuffles of the questionnaire scores for the permutation p.",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(0, None),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for the 95% interval.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--no-save", is_flag=True, help="Report only; do not write the tuned mapping."
)
@workspace_option
@json_option
def tune(
    base_mapping,
    instrument,
    feature_set,
    model,
    outer_folds,
    inner_folds,
    permutations,
    bootstrap,
    seed,
    no_save,
    workspace,
) -> None:
    """Tune the trait mapping against questionnaire scores with nested CV.

    Runs notebooks/tune_trait_mappings.ipynb with papermill and prints, per
    trait, the out-of-fold r, its 95% bootstrap interval, the permutation p, the
    current mapping's r and N. The tuned mapping is saved as a new version in
    the workspace unless --no-save; choose it with 'twinme-lab mappings use'.

    Example: twinme-lab tune --permutations 200 --json
    """
    ws = open_workspace(workspace)
    from ..traits import tuning as tuning_api

    result = tuning_api.run_tuning(
        ws,
        base_mapping=base_mapping,
        instrument=instrument,
        feature_set=list(feature_set) or None,
        model=model,
        outer_folds=outer_folds,
        inner_folds=inner_folds,
        n_permutations=permutations,
        n_bootstrap=bootstrap,
        seed=seed,
        save=not no_save,
    )
    rows = [_rounded(row) for row in result["traits"]]
    saved = (
        f"Saved mapping {result['version']}."
        if result["version"]
        else "The tuned mapping was not saved."
    )
    emit(
        result,
        table(
            rows, ["trait", "r", "ci_low", "ci_high", "p_permutation", "default_r", "n"]
        )
        + f"\n{saved} Notebook: {result['notebook']}",
    )


@click.group()
def mappings() -> None:
    """List, show and choose trait mappings."""


@mappings.command("list")
@workspace_option
@json_option
def mappings_list(workspace: str | None) -> None:
    """List the shipped and the workspace's tuned mappings."""
    ws = open_workspace(workspace)
    frame = mapping_api.list_mappings(ws)
    current = mapping_api.default_version(ws)
    rows = frame.to_dict(orient="records")
    for row in rows:
        row["in_use"] = row["version"] == current
    emit(
        {"mappings": rows, "in_use": current},
        table(rows, ["version", "origin", "weights_nonzero", "in_use"]),
    )


@mappings.command("show")
@click.argument("version")
@workspace_option
@json_option
def mappings_show(version: str, workspace: str | None) -> None:
    """Show the weights of mapping VERSION, and its metrics when tuned."""
    ws = open_workspace(workspace)
    document = mapping_api.load_mapping(version, ws)
    rows = [
        {
            "trait": trait,
            "feature": entry["feature"],
            "weight": round(float(entry["weight"]), 4),
            "status": entry["status"],
        }
        for trait, entries in document["traits"].items()
        for entry in entries
        if entry["weight"] != 0
    ]
    lines = [
        f"Mapping {document['version']} ({document['file']})",
        table(rows, ["trait", "feature", "weight", "status"]),
    ]
    metrics = document.get("metrics")
    if metrics:
        lines.append(
            f"Tuned on {document.get('instrument')} scores of "
            f"{plural(document.get('n_participants'), 'participant')}, data "
            f"{str(document.get('data_fingerprint'))[:16]}:"
        )
        lines.append(
            table(
                [_rounded({"trait": t, **m}) for t, m in metrics.items()],
                ["trait", "r", "ci_low", "ci_high", "p_permutation", "default_r", "n"],
            )
        )
    emit(document, "\n".join(lines))


@mappings.command("use")
@click.argument("version")
@workspace_option
@json_option
def mappings_use(version: str, workspace: str | None) -> None:
    """Make VERSION the mapping that scoring and reports use in this workspace."""
    ws = open_workspace(workspace)
    from ..traits import tuning as tuning_api

    tuning_api.use_mapping(ws, version)
    emit(
        {"in_use": version},
        f"Mapping {version} is now in use; run 'twinme-lab score' to rescore.",
    )


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(norms_api.EXPORT_FORMATS),
    required=True,
    help="File format.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Output file. Default: WORKSPACE/exports/traits.FORMAT.",
)
@click.option(
    "--interests",
    is_flag=True,
    help="Also export interests (they can reveal sensitive categories).",
)
@workspace_option
@json_option
def export(fmt: str, out: str | None, interests: bool, workspace: str | None) -> None:
    """Export trait scores for analysts: pseudonymous ids, scores, percentiles.

    Each row contains participant id, source (predicted or questionnaire), trait,
    score, percentile (from the questionnaire's own published norms, else empty
    with the reason), coverage, observations and mapping version. Tokens, names
    and raw records are never exported; interests only with --interests.

    Example: twinme-lab export --format parquet --out traits.parquet
    """
    ws = open_workspace(workspace)
    written = norms_api.write_export(ws, fmt, out, interests)
    text = f"Wrote {plural(written['rows'], 'row')} to {written['traits']}."
    if "interests" in written:
        text += (
            f" Interests: {plural(written['interest_rows'], 'row')} in "
            f"{written['interests']}."
        )
    emit(written, text)


def register(group: click.Group) -> None:
    group.add_command(tune)
    group.add_command(mappings)
    group.add_command(export)
