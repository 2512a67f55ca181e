"""Questionnaires, trait mappings and trait scores.

Public API for scripts and notebooks; every table function returns a pandas
DataFrame.
"""

from __future__ import annotations

from .mapping import TRAITS, list_mappings, load_mapping
from .questionnaires import (
    import_questionnaire,
    questionnaire_table,
    reliability,
    score_answers,
)
from .scoring import score, trait_history, trait_table

__all__ = [
    "TRAITS",
    "import_questionnaire",
    "list_mappings",
    "load_mapping",
    "questionnaire_table",
    "reliability",
    "score",
    "score_answers",
    "trait_history",
    "trait_table",
]
