"""What a reward head means, read off the texts: measurable attributes of responses, the words that set a
head's extremes apart, and an automatic short name ("longer, more structured", "refuses").

A head scores a pair by its margin ``w·(h_chosen − h_rejected)``. Its meaning is what changes between the
two responses when the margin is large: so each measurable attribute is taken as a *difference*
(chosen − rejected) and correlated with the margins
(:func:`pluralrm.evaluate.attributes.attribute_correlations`, as the demo does with the synthetic data's
known attributes). The attributes are deliberately plain — lengths, counts, small lexicons — so that a
name can be checked by reading the pairs behind it.

Examples
--------
>>> names, values = text_attributes(["I'm sorry, but I can't help with that.", "1. Do this\\n2. Then that"])
>>> float(values[0, names.index("refusal")]), float(values[1, names.index("lists_markdown")])
(1.0, 2.0)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pluralrm.evaluate.attributes import attribute_correlations

_WORD = re.compile(r"[a-z][a-z']+")


def _lexicon(*phrases: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in phrases) + r")\b", re.IGNORECASE)


_REFUSAL = re.compile(
    r"\b(?:i(?: am|'m) (?:sorry|afraid),? but|i (?:can(?:not|'t)|won't|will not|am unable to|'m unable to|"
    r"am not able to|'m not able to|must decline)|not going to help|can't (?:help|assist) with|"
    r"cannot (?:help|assist|provide)|as an ai\b)",
    re.IGNORECASE,
)
_LIST_LINE = re.compile(r"^\s*(?:[-*•+]\s|\d+[.)]\s|#{1,6}\s|\*\*|>\s|\|)", re.MULTILINE)
_CODE = re.compile(r"```|`[^`\n]+`|^\s*(?:def |class |import |return |for .* in |#include|function )", re.M)
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b")
_POLITE = _lexicon(
    "please", "thank you", "thanks", "kindly", "certainly", "appreciate", "happy to", "glad to"
)
_FORMAL = _lexicon(
    "advisable",
    "recommended",
    "recommend",
    "one should",
    "therefore",
    "however",
    "furthermore",
    "consider",
    "regarding",
    "moreover",
    "it is",
    "ensure",
    "provide",
    "guidance",
)
_CASUAL = re.compile(
    r"\b(?:gotta|gonna|wanna|yeah|nah|hey|honestly|stuff|kinda|sure thing|ok|okay|cool|awesome|super)\b|"
    r"\b\w+'(?:s|re|ll|ve|d|t|m)\b|!",
    re.IGNORECASE,
)
_POSITIVE = _lexicon(
    "good",
    "great",
    "best",
    "happy",
    "love",
    "enjoy",
    "easy",
    "helpful",
    "wonderful",
    "excellent",
    "success",
    "benefit",
    "glad",
    "nice",
    "positive",
)
_NEGATIVE = _lexicon(
    "bad",
    "worst",
    "hate",
    "hard",
    "difficult",
    "problem",
    "risk",
    "danger",
    "dangerous",
    "fail",
    "wrong",
    "harm",
    "harmful",
    "illegal",
    "never",
    "unfortunately",
    "sad",
)
_EMPATHY = _lexicon(
    "i understand",
    "i hear you",
    "feelings",
    "feel",
    "overwhelming",
    "valid",
    "be kind to yourself",
    "sorry to hear",
    "it's okay",
    "completely okay",
    "that sounds",
    "you're not alone",
    "support",
)
_HUMOUR = _lexicon("joke", "funny", "fun fact", "haha", "lol", "kidding", "hilarious", "pun", "bonus tip")

#: The measurable attributes, in column order, and how a head that prefers more (+) or less (−) of each
#: is named.
ATTRIBUTE_PHRASES: dict[str, tuple[str, str]] = {
    "length": ("longer", "shorter"),
    "refusal": ("refuses", "complies"),
    "lists_markdown": ("more structured", "less structured"),
    "questions": ("asks questions", "asks fewer questions"),
    "politeness": ("more polite", "less polite"),
    "formality": ("more formal", "more casual"),
    "positive": ("more positive", "less positive"),
    "negative": ("more negative", "less negative"),
    "empathy": ("more empathetic", "less empathetic"),
    "humour": ("funnier", "less joking"),
    "code": ("more code", "less code"),
    "numbers": ("more numbers", "fewer numbers"),
}
ATTRIBUTES = tuple(ATTRIBUTE_PHRASES)

# Words never distinctive: English function words and the most common chat filler.
STOPWORDS = frozenset(
    _WORD.findall(
        """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves also may might must one get it's i'm you're don't can't that's there's"""
    )
)


def text_attributes(texts: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """The measurable attributes of each text: (names, values of shape (n_texts, n_attributes)).

    Counts are raw (a head that likes longer texts also likes more of everything a long text has; the
    ``length`` column shows that), except ``formality`` — formal minus casual markers per word — and
    ``refusal`` and ``code``, which are 0/1.
    """
    rows = np.zeros((len(texts), len(ATTRIBUTES)))
    for i, text in enumerate(texts):
        words = len(text.split())
        rows[i] = (
            math.log1p(words),
            float(bool(_REFUSAL.search(text))),
            len(_LIST_LINE.findall(text)),
            text.count("?"),
            len(_POLITE.findall(text)),
            (len(_FORMAL.findall(text)) - len(_CASUAL.findall(text))) / max(words, 1),
            len(_POSITIVE.findall(text)),
            len(_NEGATIVE.findall(text)),
            len(_EMPATHY.findall(text)),
            len(_HUMOUR.findall(text)),
            float(bool(_CODE.search(text))),
            len(_NUMBER.findall(text)),
        )
    return ATTRIBUTES, rows


def pair_attribute_differences(chosen: Sequence[str], rejected: Sequence[str]) -> np.ndarray:
    """Attributes of each chosen response minus those of its rejected one, shape (n_pairs, n_attributes)."""
    return text_attributes(chosen)[1] - text_attributes(rejected)[1]


def distinctive_words(
    preferred: Sequence[str], other: Sequence[str], *, top: int = 6, min_count: int = 2
) -> tuple[list[str], list[str]]:
    """Words that most set ``preferred`` texts apart from ``other`` texts, each way.

    Scored by the smoothed log-odds of appearing in a text of one side rather than the other (document
    frequencies, +1 smoothing); a word must appear in at least ``min_count`` texts of its side.
    """

    def doc_freq(texts: Sequence[str]) -> Counter:
        counts: Counter = Counter()
        for text in texts:
            counts.update({w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 2})
        return counts

    a, b = doc_freq(preferred), doc_freq(other)
    n_a, n_b = max(len(preferred), 1), max(len(other), 1)

    def log_odds(word: str) -> float:
        return math.log((a[word] + 1) / (n_a + 2)) - math.log((b[word] + 1) / (n_b + 2))

    more = sorted((w for w in a if a[w] >= min_count), key=lambda w: (-log_odds(w), w))
    less = sorted((w for w in b if b[w] >= min_count), key=lambda w: (log_odds(w), w))
    return [w for w in more if log_odds(w) > 0][:top], [w for w in less if log_odds(w) < 0][:top]


@dataclass
class HeadMeaning:
    """What one head means on a set of pairs.

    Attributes
    ----------
    head : str
    name : str
        The automatic short name: the one or two attributes whose differences track the head's margins
        most strongly, or, when none does, the words of its preferred extremes.
    correlations : dict of str -> float
        Pearson correlation of the head's margins with each attribute difference.
    more_words, less_words : list of str
        Words distinctive of the responses the head prefers / disprefers, among its extreme pairs.
    top, bottom : list of int
        Indices of the pairs with the largest margins each way (the head agrees / disagrees most strongly
        with the label), largest first.
    description : str or None
        A description written by an LM over an OpenAI-compatible endpoint, when one was asked for.
    """

    head: str
    name: str
    correlations: dict[str, float]
    more_words: list[str]
    less_words: list[str]
    top: list[int] = field(default_factory=list)
    bottom: list[int] = field(default_factory=list)
    description: str | None = None


def name_from(correlations: dict[str, float], more_words: Sequence[str], *, min_correlation: float) -> str:
    """The short name: the strongest attribute (|r| ≥ ``min_correlation``) and a second one when it is at
    least half as strong; else ``"prefers 'w1', 'w2'"`` from the distinctive words; else ``"unclear"``."""
    ranked = sorted(correlations.items(), key=lambda kv: -abs(kv[1]))
    strong = [(a, r) for a, r in ranked if abs(r) >= min_correlation]
    if strong:
        chosen = strong[:1] + [(a, r) for a, r in strong[1:2] if abs(r) >= 0.5 * abs(strong[0][1])]
        return ", ".join(ATTRIBUTE_PHRASES[a][0 if r > 0 else 1] for a, r in chosen)
    if more_words:
        return "prefers " + ", ".join(f"'{w}'" for w in more_words[:2])
    return "unclear"


def head_meanings(
    margins: np.ndarray,
    chosen: Sequence[str],
    rejected: Sequence[str],
    heads: Sequence[str],
    *,
    min_correlation: float = 0.3,
    n_extremes: int = 50,
    n_examples: int = 3,
) -> list[HeadMeaning]:
    """One :class:`HeadMeaning` per column of ``margins`` (shape (n_pairs, n_heads), named ``heads``).

    The distinctive words come from each head's ``n_extremes`` pairs of largest |margin|: the response it
    prefers on each against the one it disprefers.
    """
    margins = np.asarray(margins, dtype=np.float64)
    if margins.ndim != 2 or margins.shape != (len(chosen), len(heads)) or len(chosen) != len(rejected):
        raise ValueError(
            f"margins must have shape (n_pairs, n_heads) = ({len(chosen)}, {len(heads)}), got {margins.shape}"
        )
    corr = attribute_correlations(margins, pair_attribute_differences(chosen, rejected))
    meanings = []
    for j, head in enumerate(heads):
        m = margins[:, j]
        order = np.argsort(-m, kind="stable")
        extremes = np.argsort(-np.abs(m), kind="stable")[:n_extremes]
        preferred = [chosen[i] if m[i] > 0 else rejected[i] for i in extremes]
        other = [rejected[i] if m[i] > 0 else chosen[i] for i in extremes]
        more, less = distinctive_words(preferred, other)
        correlations = {a: float(c) for a, c in zip(ATTRIBUTES, corr[j], strict=True)}
        meanings.append(
            HeadMeaning(
                head=head,
                name=name_from(correlations, more, min_correlation=min_correlation),
                correlations=correlations,
                more_words=more,
                less_words=less,
                top=[int(i) for i in order[:n_examples]],
                bottom=[int(i) for i in order[::-1][:n_examples]],
            )
        )
    return meanings
