"""Tables of the trait report, formatted for reading, with unknowns spelled out."""

from __future__ import annotations

import html

import pandas as pd
from IPython.display import HTML, display

from ..traits.norms import load_norms
from .data import ReportData
from .figures import NOT_MEASURED


def _show(frame: pd.DataFrame, empty: str) -> None:
    if not len(frame):
        display(HTML(f"<p><em>{empty}</em></p>"))
        return
    display(HTML(frame.to_html(index=False, escape=True, na_rep="")))


def _format(value, pattern: str, missing: str) -> str:
    if value is None or pd.isna(value):
        return missing
    return pattern.format(value)


def show_traits(report: ReportData) -> None:
    """Show score, coverage and observations per trait."""
    frame = pd.DataFrame(
        {
            "trait": report.traits["trait"],
            "predicted z": [
                _format(v, "{:+.2f}", NOT_MEASURED) for v in report.traits["score"]
            ],
            "coverage": [f"{c:.0%}" for c in report.traits["coverage"]],
            "observations": report.traits["n_obs"],
        }
    )
    _show(frame, "No traits.")


def show_features(report: ReportData) -> None:
    """Show each trait's weighted features, then the exploratory ones (weight 0).

    A weighted feature row gives its weight, the participant's value and z-score,
    the observations and time window behind the value, and the weight's source.
    """
    features = report.features
    weighted = features[features["weight"] != 0]
    frame = pd.DataFrame(
        {
            "trait": weighted["trait"],
            "feature": weighted["feature"],
            "weight": [f"{w:+.2f}" for w in weighted["weight"]],
            "value": [_format(v, "{:.3g}", "no data") for v in weighted["value"]],
            "z": [_format(v, "{:+.2f}", "") for v in weighted["z"]],
            "observations": weighted["n_obs"],
            "window": _windows(weighted),
            "status": weighted["status"],
            "source": [
                source if isinstance(source, str) and source else "no published source"
                for source in weighted["source"]
            ],
        }
    )
    _show(frame, "No feature carries a non-zero weight in this mapping.")

    exploratory = features[features["weight"] == 0].drop_duplicates("feature")
    exploratory = exploratory.sort_values("feature", kind="stable")
    if len(exploratory):
        display(
            HTML(
                "<p>Exploratory features: weight 0 for every trait until a tuned "
                "mapping sets one, so they do not move the scores.</p>"
            )
        )
        _show(
            pd.DataFrame(
                {
                    "feature": exploratory["feature"],
                    "value": [
                        _format(v, "{:.3g}", "no data") for v in exploratory["value"]
                    ],
                    "observations": exploratory["n_obs"],
                    "window": _windows(exploratory),
                }
            ),
            "",
        )


def _windows(frame: pd.DataFrame) -> list[str]:
    return [
        _window(start, end)
        for start, end in zip(frame["window_start"], frame["window_end"], strict=True)
    ]


def _window(start, end) -> str:
    if start is None or pd.isna(start) or end is None or pd.isna(end):
        return ""
    return f"{pd.Timestamp(start):%Y-%m-%d} to {pd.Timestamp(end):%Y-%m-%d}"


def show_comparison(report: ReportData) -> None:
    """Show questionnaire scores beside the predicted ones where both exist."""
    if len(report.comparison):
        frame = pd.DataFrame(
            {
                "trait": report.comparison["trait"],
                "predicted z": [f"{v:+.2f}" for v in report.comparison["predicted_z"]],
                "coverage": [f"{c:.0%}" for c in report.comparison["coverage"]],
                "instrument": report.comparison["instrument"],
                "questionnaire (mean item)": [
                    f"{v:.2f}" for v in report.comparison["questionnaire_score"]
                ],
            }
        )
        _show(frame, "")
    else:
        display(
            HTML(
                "<p><em>No trait has both a prediction and a questionnaire "
                "score.</em></p>"
            )
        )
    if len(report.questionnaires):
        scores = report.questionnaires
        frame = pd.DataFrame(
            {
                "instrument": scores["instrument"],
                "scale": scores["scale"],
                "score (mean item)": [
                    _format(v, "{:.2f}", "not scored") for v in scores["score"]
                ],
                "percentile": [
                    _format(v, "{:.0f}", "unknown") for v in scores["percentile"]
                ],
                "items": scores["n_items"],
                "missing items": scores["n_missing"],
            }
        )
        _show(frame, "")
        reasons = sorted(
            {
                reason
                for value, reason in zip(
                    scores["percentile"], scores["percentile_note"], strict=True
                )
                if _format(value, "{}", "") == "" and isinstance(reason, str)
            }
        )
        for reason in reasons:
            display(HTML(f"<p><em>Percentile unknown: {html.escape(reason)}</em></p>"))
        normed = sorted(
            {
                instrument
                for instrument, value in zip(
                    scores["instrument"], scores["percentile"], strict=True
                )
                if _format(value, "{}", "") != ""
            }
        )
        for instrument in normed:
            norms = load_norms(instrument)
            display(
                HTML(
                    f"<p><em>{html.escape(instrument)} percentiles against "
                    f"{html.escape(norms.citation)} Sample: "
                    f"{html.escape(norms.sample or 'not described')}</em></p>"
                )
            )


def show_summary(report: ReportData) -> None:
    """Show events per source and kind with their time window."""
    summary = report.summary
    frame = pd.DataFrame(
        {
            "source": summary["source"],
            "kind": summary["kind"],
            "events": summary["events"],
            "hours": [_format(v, "{:.1f}", "") for v in summary["hours"]],
            "first": [_format(v, "{:%Y-%m-%d}", "") for v in summary["first_event"]],
            "last": [_format(v, "{:%Y-%m-%d}", "") for v in summary["last_event"]],
        }
    )
    _show(frame, "No events imported for this participant.")
