"""Communication-style counts measured from a participant's own text at import.

Message, post and comment text is not stored unless the study asks for it
(``--keep-text``), so the counts that the communication features need are taken
while the text is in memory: characters, words, question and exclamation marks,
emoji, first-person pronouns and lexicon words.

Sentiment words come from AFINN-en-165 (Finn Årup Nielsen, 2011; Open Database
License v1.0), shipped unmodified as ``twinme_lab/data/afinn-en-165.txt`` with its
licence and notice beside it. Pronoun and sentiment counts are for English only.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from importlib import resources

LEXICON_FILE = "afinn-en-165.txt"
LEXICON_VERSION = "afinn-en-165"

# Letters with inner apostrophes ("don't", "I'm"); digits and underscores are not
# words.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
_TAG = re.compile(r"<[^>]+>")
# Discord custom emoji: <:name:id>, animated <a:name:id>.
_CUSTOM_EMOJI = re.compile(r"<a?:[A-Za-z0-9_~]+:[0-9]+>")
# Links and Discord user, role and channel mentions are not words, and the "?"
# of a query string or the "!" of a nickname mention is not punctuation.
_NOT_PROSE = re.compile(r"https?://\S+|www\.\S+|<(?:@[!&]?|#)[0-9]+>")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})

FIRST_PERSON_SINGULAR = frozenset(
    {"i", "me", "my", "mine", "myself", "i'm", "i've", "i'll", "i'd"}
)
FIRST_PERSON_PLURAL = frozenset(
    {"we", "us", "our", "ours", "ourselves", "we're", "we've", "we'll", "we'd"}
)

# The most frequent English function words, pronouns left out. Their share of a
# participant's words shows whether English word lists (pronouns, AFINN) apply.
# NOTE: some of these words occur in other languages too ("is" in Dutch, "to" in
# Polish), so the share is a coarse test of English, not a language detector.
ENGLISH_FUNCTION_WORDS = frozenset(
    {
        "the",
        "and",
        "to",
        "of",
        "is",
        "it",
        "that",
        "for",
        "on",
        "with",
        "this",
        "be",
        "are",
        "was",
        "have",
        "not",
        "but",
        "at",
        "or",
        "what",
        "do",
        "if",
        "just",
        "so",
        "can",
        "there",
        "from",
        "will",
        "would",
        "about",
    }
)

# Code point ranges of emoji pictographs (Unicode 15 emoji blocks plus the older
# symbol blocks most emoji live in). Skin-tone modifiers, variation selectors and
# zero-width joiners continue the emoji before them and are not counted again, and
# a pair of regional indicators (a flag) counts once.
# NOTE: an approximation of Unicode's Extended_Pictographic property; a few
# dingbats in U+2600-U+27BF that usually render as text are counted too.
_EMOJI_RANGES = (
    (0x1F000, 0x1F0FF),
    (0x1F100, 0x1F1E5),
    (0x1F200, 0x1F2FF),
    (0x1F300, 0x1F3FA),
    (0x1F400, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F780, 0x1F7FF),
    (0x1F900, 0x1F9FF),
    (0x1FA70, 0x1FAFF),
    (0x2600, 0x27BF),
    (0x2B50, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
)
_PICTOGRAPH = "[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _EMOJI_RANGES) + "]"
# Skin tones, variation selectors and the keycap mark modify the emoji before them.
_MODIFIERS = "[\U0001f3fb-\U0001f3ff\ufe0e\ufe0f\u20e3]*"
_EMOJI = re.compile(
    "[\U0001f1e6-\U0001f1ff]{1,2}"
    f"|{_PICTOGRAPH}{_MODIFIERS}(?:\u200d{_PICTOGRAPH}{_MODIFIERS})*"
)


@dataclass(frozen=True)
class TextCounts:
    """Counts from one piece of text written by the participant."""

    chars: int
    words: int
    questions: int
    exclamations: int
    emoji: int
    first_singular: int
    first_plural: int
    positive: int
    negative: int
    english_function_words: int

    def columns(self) -> dict:
        """Return the counts under their ``written_items`` column names."""
        return {
            "chars": self.chars,
            "words": self.words,
            "questions": self.questions,
            "exclamations": self.exclamations,
            "emoji": self.emoji,
            "first_singular": self.first_singular,
            "first_plural": self.first_plural,
            "positive_words": self.positive,
            "negative_words": self.negative,
            "english_function_words": self.english_function_words,
            "lexicon": LEXICON_VERSION,
        }


@functools.cache
def lexicon() -> dict[str, int]:
    """Return AFINN's single-word entries as ``{word: valence}``."""
    text = (
        resources.files("twinme_lab.data")
        .joinpath(LEXICON_FILE)
        .read_text(encoding="utf-8")
    )
    entries: dict[str, int] = {}
    for line in text.splitlines():
        word, _, score = line.rpartition("\t")
        if word and " " not in word:
            entries[word.translate(_APOSTROPHES)] = int(score)
    return entries


def plain_text(text: str) -> str:
    """Strip HTML tags and decode entities (LinkedIn messages are often HTML)."""
    if "<" in text or "&" in text:
        text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split())


def count_emoji(text: str) -> int:
    """Count emoji in ``text``; a joined sequence or a flag counts as one."""
    return len(_EMOJI.findall(text))


def measure(text: str, html_markup: bool = False) -> TextCounts:
    """Count the style markers in one message, post or comment.

    With ``html_markup`` the text is HTML (LinkedIn messages): tags are dropped
    and entities decoded first. Links and mentions are left out of every count,
    and a Discord custom emoji counts as one emoji (and one character) and its
    name as no word. ``chars`` counts the remaining text with runs of white
    space as one.
    """
    clean = plain_text(text) if html_markup else text.strip()
    custom_emoji = len(_CUSTOM_EMOJI.findall(clean))
    clean = _CUSTOM_EMOJI.sub(" ", clean) if custom_emoji else clean
    clean = " ".join(_NOT_PROSE.sub(" ", clean).split())
    words = [w.casefold() for w in _WORD.findall(clean.translate(_APOSTROPHES))]
    valence = lexicon()
    scores = [valence[w] for w in words if w in valence]
    return TextCounts(
        chars=len(clean) + custom_emoji,
        words=len(words),
        questions=clean.count("?") + clean.count("\uff1f"),
        exclamations=clean.count("!") + clean.count("\uff01"),
        emoji=count_emoji(clean) + custom_emoji,
        first_singular=sum(w in FIRST_PERSON_SINGULAR for w in words),
        first_plural=sum(w in FIRST_PERSON_PLURAL for w in words),
        positive=sum(s > 0 for s in scores),
        negative=sum(s < 0 for s in scores),
        english_function_words=sum(w in ENGLISH_FUNCTION_WORDS for w in words),
    )
