"""The IPIP-NEO-120: Johnson's 120-item public-domain Five Factor inventory.

Source: Johnson, J. A. (2014). Measuring thirty facets of the Five Factor Model with
a 120-item public domain inventory: Development of the IPIP-NEO-120. Journal of
Research in Personality, 51, 78-89. https://doi.org/10.1016/j.jrp.2014.05.003

Layout: 30 facets of four items each, six facets per domain. Items cycle through
the domains N, E, O, A, C and move to the next facet every five items. So item 1
is N1 (Anxiety), item 2 is E1 (Friendliness), item 6 is N2 (Anger), item 30 is C6
(Cautiousness), and items 31-60, 61-90 and 91-120 repeat that cycle. Answers are
on a 1-5 scale (Very Inaccurate to Very Accurate), and a reverse-keyed item
scores as 6 - answer.

Sources checked: the item file of Alheimsins/b5-johnson-120-ipip-neo-pi-r
(data/en/questions.json), which gives every item's domain, facet and keying in
this order, and IPIP_NEO_ITEMS_REVERSED_120 in NeuroQuestAi/five-factor-e
(ipipneo/reverse.py, which credits J. A. Johnson). The 55 reverse-keyed item
numbers agree item for item between the two.

A third public item table, a translation worksheet that takes its item numbers
from Johnson (2014, Table 1) and its keys from ipip.ori.org, gives the same
facet and the same keying for all 120 items. None of the three is the article
itself. Item wording is not needed for scoring and is not shipped.

Scores are mean item scores on the 1-5 scale. A scale with more than 20% of its
items missing gets no score (the rule the IPIP-50 scoring uses here); for a
four-item facet that means one missing item leaves the facet unscored, and a
24-item domain keeps its score with up to four missing items, prorated as the mean
of the answered items.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InputError

NAME = "ipip_neo_120"
N_ITEMS = 120
MIN_ANSWER = 1
MAX_ANSWER = 5
MAX_MISSING_SHARE = 0.20

# Domain letters in the order the items cycle through them.
DOMAIN_ORDER = ("N", "E", "O", "A", "C")
# Domain letter to trait name, as the other instruments store traits.
DOMAINS = {
    "N": "neuroticism",
    "E": "extraversion",
    "O": "openness",
    "A": "agreeableness",
    "C": "conscientiousness",
}
FACETS = {
    "N": (
        "Anxiety",
        "Anger",
        "Depression",
        "Self-Consciousness",
        "Immoderation",
        "Vulnerability",
    ),
    "E": (
        "Friendliness",
        "Gregariousness",
        "Assertiveness",
        "Activity Level",
        "Excitement-Seeking",
        "Cheerfulness",
    ),
    "O": (
        "Imagination",
        "Artistic Interests",
        "Emotionality",
        "Adventurousness",
        "Intellect",
        "Liberalism",
    ),
    "A": ("Trust", "Morality", "Altruism", "Cooperation", "Modesty", "Sympathy"),
    "C": (
        "Self-Efficacy",
        "Orderliness",
        "Dutifulness",
        "Achievement-Striving",
        "Self-Discipline",
        "Cautiousness",
    ),
}

REVERSED_ITEMS = frozenset(
    {
        9,
        19,
        24,
        30,
        39,
        40,
        48,
        49,
        51,
        53,
        54,
        60,
        62,
        67,
        68,
        69,
        70,
        73,
        74,
        75,
        78,
        79,
        80,
        81,
        83,
        84,
        85,
        88,
        89,
        90,
        92,
        94,
        96,
        97,
        98,
        99,
        100,
        101,
        102,
        103,
        104,
        105,
        106,
        107,
        108,
        109,
        110,
        111,
        113,
        114,
        115,
        116,
        118,
        119,
        120,
    }
)


@dataclass(frozen=True)
class Item:
    """One item of the key: its number, domain letter, facet number and keying."""

    number: int
    domain: str
    facet: int
    reversed: bool

    @property
    def facet_id(self) -> str:
        return f"{self.domain}{self.facet}"


def item_key() -> list[Item]:
    """Return the 120 items in administration order."""
    items = []
    for number in range(1, N_ITEMS + 1):
        position = number - 1
        domain = DOMAIN_ORDER[position % 5]
        facet = (position // 5) % 6 + 1
        items.append(Item(number, domain, facet, number in REVERSED_ITEMS))
    return items


def facet_label(domain: str, facet: int) -> str:
    """Return a facet's display label, e.g. 'N1 Anxiety'."""
    return f"{domain}{facet} {FACETS[domain][facet - 1]}"


def facet_scale(domain: str, facet: int) -> str:
    """Return the stored scale name of a facet, e.g. 'n1_anxiety'."""
    words = FACETS[domain][facet - 1].lower().replace("-", "_").replace(" ", "_")
    return f"{domain.lower()}{facet}_{words}"


def scales() -> dict[str, list[Item]]:
    """Return every scale (five domains, then 30 facets) with its items."""
    key = item_key()
    result: dict[str, list[Item]] = {}
    for letter in DOMAIN_ORDER:
        result[DOMAINS[letter]] = [item for item in key if item.domain == letter]
    for letter in DOMAIN_ORDER:
        for facet in range(1, 7):
            result[facet_scale(letter, facet)] = [
                item for item in key if item.domain == letter and item.facet == facet
            ]
    return result


def validate_answer(item: int, value: float, where: str) -> float:
    """Check that an answer is a whole number from 1 to 5; raise InputError if not."""
    if not (MIN_ANSWER <= value <= MAX_ANSWER) or value != int(value):
        raise InputError(
            f"{where}: item {item} has answer {value!r}; IPIP-NEO-120 answers are "
            f"whole numbers from {MIN_ANSWER} to {MAX_ANSWER}."
        )
    return float(value)


def keyed_value(item: Item, answer: float) -> float:
    """Return the answer in the scale's direction (reverse-keyed: 6 - answer)."""
    return (MIN_ANSWER + MAX_ANSWER - answer) if item.reversed else answer


def score(answers: Mapping[int, float | None]) -> dict[str, dict]:
    """Score one respondent's answers (item number to answer, None when missing).

    Returns, for every scale, ``{"score", "n_items", "n_missing"}``; ``score`` is
    None when more than 20% of the scale's items are missing.
    """
    unknown = sorted(set(answers) - set(range(1, N_ITEMS + 1)))
    if unknown:
        raise InputError(
            f"IPIP-NEO-120 has items 1 to {N_ITEMS}; got item numbers {unknown}."
        )
    result = {}
    for scale, items in scales().items():
        values = []
        for item in items:
            raw = answers.get(item.number)
            if raw is None or (isinstance(raw, float) and math.isnan(raw)):
                continue
            checked = validate_answer(item.number, raw, "answers")
            values.append(keyed_value(item, checked))
        n_missing = len(items) - len(values)
        too_many_missing = n_missing > MAX_MISSING_SHARE * len(items)
        result[scale] = {
            "score": None
            if too_many_missing or not values
            else sum(values) / len(values),
            "n_items": len(items),
            "n_missing": n_missing,
        }
    return result


def instrument():
    """Return the IPIP-NEO-120 as a questionnaire :class:`Instrument`.

    Domain scales carry their trait; facet scales carry none, so trait tables
    compare predictions with the five domain scores only. Register it with
    ``questionnaires.register_instrument(ipip_neo_120.instrument())``.
    """
    from .questionnaires import Instrument, Scale

    scale_list = []
    for name, items in scales().items():
        is_domain = name in DOMAINS.values()
        first = items[0]
        label = (
            name.capitalize() if is_domain else facet_label(first.domain, first.facet)
        )
        scale_list.append(
            Scale(
                name,
                label,
                name if is_domain else None,
                tuple((item.number, -1 if item.reversed else 1) for item in items),
            )
        )
    return Instrument(
        name=NAME,
        title="IPIP-NEO-120 (Johnson, 2014)",
        n_items=N_ITEMS,
        response_min=MIN_ANSWER,
        response_max=MAX_ANSWER,
        max_missing_share=MAX_MISSING_SHARE,
        scales=tuple(scale_list),
        reliability_statistic="cronbach_alpha",
        sources=(
            "Johnson, J. A. (2014). Measuring thirty facets of the Five Factor "
            "Model with a 120-item public domain inventory: Development of the "
            "IPIP-NEO-120. Journal of Research in Personality, 51, 78-89.",
        ),
    )
