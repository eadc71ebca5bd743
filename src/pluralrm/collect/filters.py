"""The response-filtering stage's rules, each a named, separately tested piece (Hu et al. 2024, step 3).

AI does the cheap part so people judge only what is left: degenerate responses are dropped by rule
(:class:`Empty`, :class:`Truncated`, :class:`RepeatedNgrams`, :class:`WrongLanguage`, :class:`Refusal`),
pairs of near-identical responses are dropped (:class:`NearIdentical`), and a pluralrm reward
(:class:`RewardJudge`, optionally confirmed by an LM through an OpenAI-compatible endpoint,
:class:`LMJudge`) labels the pairs it decides with a large margin; the uncertain rest goes to people,
most uncertain first, within a label budget (:func:`within_budget`).

A response rule is called with a response record (``text``, ``finish``) and returns True to *drop* it.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from pluralrm.collect.provenance import record_id
from pluralrm.config import COLLECT, CollectConfig

if TYPE_CHECKING:
    from pluralrm.data.records import Prompt
    from pluralrm.generate.sampling import Generator
    from pluralrm.rewards.protocols import Profile
    from pluralrm.rewards.reward_model import RewardModel

logger = logging.getLogger(__name__)

Label = Literal["a", "b"]


class ResponseRule(Protocol):
    """A named rule that says whether one response record must be dropped."""

    @property
    def name(self) -> str: ...

    def __call__(self, response: dict[str, Any]) -> bool: ...


@dataclass(frozen=True)
class Empty:
    """Drop a response with fewer than ``min_chars`` characters once stripped (nothing to judge)."""

    min_chars: int = COLLECT.min_chars
    name: str = "empty"

    def __call__(self, response: dict[str, Any]) -> bool:
        return len(str(response.get("text") or "").strip()) < self.min_chars


@dataclass(frozen=True)
class Truncated:
    """Drop a response the generator cut at its token limit (``finish == "length"``): people would judge
    where it stopped, not what it said."""

    name: str = "truncated"

    def __call__(self, response: dict[str, Any]) -> bool:
        return response.get("finish") == "length"


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def repeated_share(text: str, n: int) -> float:
    """Share of a text's word n-grams that repeat an earlier one (0: none; → 1: a loop).

    Examples
    --------
    >>> repeated_share("a b c d", 2)
    0.0
    >>> repeated_share("go go go go go", 2)
    0.75
    """
    words = _words(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


@dataclass(frozen=True)
class RepeatedNgrams:
    """Drop a response whose word ``n``-grams are repeats more than ``max_share`` of the time — the loop a
    small sampled LM falls into."""

    n: int = COLLECT.ngram
    max_share: float = COLLECT.max_repeated
    name: str = "repeated-ngrams"

    def __call__(self, response: dict[str, Any]) -> bool:
        return repeated_share(str(response.get("text") or ""), self.n) > self.max_share


# The 60 most frequent English function words: an English text of a dozen words almost always has some.
_STOPWORD_TEXT = (
    "the a an and or but if of to in on at by for with from as is are was were be been being it its this "
    "that these those i you he she we they me him her us them my your our their not no do does did have has "
    "had can will would should could so than then there here what which who"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def stopword_share(text: str) -> float:
    """Share of a text's words that are common English function words."""
    words = _words(text)
    return sum(w in STOPWORDS for w in words) / len(words) if words else 0.0


def latin_share(text: str) -> float:
    """Share of a text's letters that are ASCII Latin letters (1.0 for a text without letters)."""
    letters = [c for c in text if c.isalpha()]
    return sum(c.isascii() for c in letters) / len(letters) if letters else 1.0


def prose_words(text: str, min_line_words: int = 6) -> list[str]:
    """The words of a text's prose lines (lines of at least ``min_line_words`` words): list items, table
    rows and code lines carry few function words in any language, so they are left out of the test."""
    words: list[str] = []
    for line in text.splitlines():
        line_words = _words(line)
        if len(line_words) >= min_line_words:
            words += line_words
    return words


@dataclass(frozen=True)
class WrongLanguage:
    """Drop a response that is not English, by a script and stop-word rule.

    Two tests: fewer than half of its letters are Latin (another script), or its prose lines (6+ words)
    hold at least ``min_words`` words of which under ``min_stopwords`` are English function words (a
    Latin-script language other than English). Limits, on purpose: English only; an answer with little
    prose (short, or only list items, table rows or code) passes the stop-word test; a mixed-language
    answer passes when its English part is large enough. A language-ID model would do better; this rule
    needs no download and is predictable.
    """

    min_stopwords: float = COLLECT.min_stopwords
    min_words: int = 12
    name: str = "wrong-language"

    def __call__(self, response: dict[str, Any]) -> bool:
        text = str(response.get("text") or "")
        if latin_share(text) < 0.5:
            return True
        words = prose_words(text)
        share = sum(w in STOPWORDS for w in words) / len(words) if words else 1.0
        return len(words) >= self.min_words and share < self.min_stopwords


REFUSAL_PATTERNS = (
    r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:'|no)t|cannot|won't|will not|am unable)",
    r"\bI (?:can(?:'|no)t|cannot|won't|will not) (?:help(?! but)|assist|provide|do|comply|answer)",
    r"\bI(?:'m| am) (?:not able|unable) to (?:help|assist|provide|comply|answer)",
    r"\bas an AI(?: language model)?,? I (?:can(?:'|no)t|cannot|don't|do not)",
    r"\bI must (?:decline|refuse)",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    """Drop a response that refuses, found by the phrasing rules in :data:`REFUSAL_PATTERNS` within its
    first ``window`` characters (a refusal says so first). Limits: English phrasings only; a refusal in
    other words passes, and a helpful answer quoting a refusal early can be dropped."""

    window: int = 200
    name: str = "refusal"

    def __call__(self, response: dict[str, Any]) -> bool:
        return _REFUSAL.search(str(response.get("text") or "")[: self.window]) is not None


def default_response_rules(config: CollectConfig = COLLECT) -> list[ResponseRule]:
    """The degenerate-response rules in the order the filter stage applies them, less ``config.skip_rules``.

    Raises
    ------
    ValueError
        A name in ``skip_rules`` that is no rule (a typo would otherwise silently filter as before).
    """
    rules: list[ResponseRule] = [
        Empty(config.min_chars),
        Truncated(),
        RepeatedNgrams(config.ngram, config.max_repeated),
        WrongLanguage(config.min_stopwords),
        Refusal(),
    ]
    unknown = set(config.skip_rules) - {rule.name for rule in rules}
    if unknown:
        raise ValueError(f"unknown rule(s) to skip: {sorted(unknown)}; rules are {[r.name for r in rules]}")
    return [rule for rule in rules if rule.name not in config.skip_rules]


# --- pairs ------------------------------------------------------------------------------------------


def candidate_pairs(responses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pair of distinct responses to the same prompt, in input order.

    Each pair: ``pair_id`` (fixed by its two response ids), ``prompt_id``, ``prompt``, ``a_id``, ``b_id``,
    ``response_a``, ``response_b``.
    """
    by_prompt: dict[str, list[dict]] = {}
    for response in responses:
        by_prompt.setdefault(str(response["prompt_id"]), []).append(response)
    pairs = []
    for prompt_id, group in by_prompt.items():
        for a, b in itertools.combinations(group, 2):
            pairs.append(
                {
                    "pair_id": record_id("pair", a["response_id"], b["response_id"]),
                    "prompt_id": prompt_id,
                    "prompt": a["prompt"],
                    "a_id": a["response_id"],
                    "b_id": b["response_id"],
                    "response_a": a["text"],
                    "response_b": b["text"],
                }
            )
    return pairs


def text_similarity(a: str, b: str) -> float:
    """Character-level similarity in [0, 1] (difflib's ratio: 2·matches / total length).

    Examples
    --------
    >>> text_similarity("same", "same")
    1.0
    """
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


@dataclass(frozen=True)
class NearIdentical:
    """Drop a pair whose two responses are at least ``threshold`` similar: a label on it says nothing about
    preference and costs as much as any other."""

    threshold: float = COLLECT.near_identical
    name: str = "near-identical"

    def __call__(self, pair: dict[str, Any]) -> bool:
        a, b = str(pair["response_a"]), str(pair["response_b"])
        if a.strip() == b.strip():
            return True
        # quick_ratio is an upper bound of ratio: most pairs are ruled out without the full match.
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        return matcher.quick_ratio() >= self.threshold and matcher.ratio() >= self.threshold


def pairs_per_prompt(pairs: Sequence[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    """At most ``k`` pairs per prompt, drawn at random (seeded by the prompt), keeping input order.

    A random draw rather than the first ``k``: the first responses would otherwise be compared more often.
    """
    by_prompt: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_prompt.setdefault(str(pair["prompt_id"]), []).append(i)
    keep: set[int] = set()
    for prompt_id, indices in by_prompt.items():
        if len(indices) <= k:
            keep.update(indices)
            continue
        rng = np.random.default_rng(int(record_id(seed, prompt_id), 16) % 2**32)
        keep.update(int(i) for i in rng.choice(indices, size=k, replace=False))
    return [pair for i, pair in enumerate(pairs) if i in keep]


# --- AI judges --------------------------------------------------------------------------------------


class RewardJudge:
    """A pluralrm reward as the AI judge: margin ``r(prompt, a) − r(prompt, b)`` per pair.

    Scores go through :meth:`pluralrm.rewards.RewardModel.rewards`, the one scoring path, under the general
    head, one head or a user's profile.

    Parameters
    ----------
    model : RewardModel
    user : UserProfile, optional
    head : str, optional
    name : str
        How the judge is named in provenance (e.g. the model directory).
    """

    def __init__(
        self,
        model: RewardModel,
        *,
        user: Profile | None = None,
        head: str | None = None,
        name: str = "reward",
    ) -> None:
        self.model = model
        self.user = user
        self.head = head
        self.name = name

    def describe(self) -> dict[str, Any]:
        user = self.user.user if self.user is not None else None
        return {"judge": "reward", "model": self.name, "head": self.head, "user": user}

    def margins(self, pairs: Sequence[dict[str, Any]]) -> np.ndarray:
        """``(n_pairs,)`` margins; positive means the judge prefers ``response_a``."""
        if not pairs:
            return np.zeros(0)
        inputs = [(p["prompt"], p["response_a"]) for p in pairs] + [
            (p["prompt"], p["response_b"]) for p in pairs
        ]
        rewards = self.model.rewards(inputs, user=self.user, head=self.head)
        return rewards[: len(pairs)] - rewards[len(pairs) :]


JUDGE_PROMPT = (
    "Which response answers the user better? Reply with the single letter A or B.\n\n"
    "[User]\n{prompt}\n\n[Response A]\n{a}\n\n[Response B]\n{b}"
)


def render_prompt(prompt: Prompt) -> str:
    """A prompt as one string: itself, or a conversation's turns as ``role: content`` lines (what a judge
    and a labeller read; the pairs file's ``prompt`` is always a string)."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def parse_verdict(text: str) -> Label | None:
    """``"a"``/``"b"`` from a judge's reply that starts with the letter, else None (no opinion).

    Examples
    --------
    >>> parse_verdict("B."), parse_verdict("Response A"), parse_verdict("both")
    ('b', 'a', None)
    """
    match = re.match(r"\s*(?:response\s*)?\**\s*([AB])\b", text, re.IGNORECASE)
    if match is None:
        return None
    return "a" if match.group(1).lower() == "a" else "b"


class LMJudge:
    """An LM behind an OpenAI-compatible endpoint, asked which response is better, in both orders.

    A verdict counts only when both orders agree: LM judges favour a position, and a verdict that flips
    with the order is no verdict. Requests go through :class:`pluralrm.generate.endpoint.EndpointGenerator`
    (retries, API key from the environment), greedy, a few tokens.
    """

    def __init__(
        self, url: str, model: str, *, generator: Generator | None = None, **endpoint_options: Any
    ) -> None:
        if generator is None:
            from pluralrm.generate.endpoint import EndpointGenerator

            generator = EndpointGenerator(url, model, **endpoint_options)
        self.generator = generator
        self.url = url
        self.model = model

    def describe(self) -> dict[str, Any]:
        return {"judge": "lm", "model": self.model, "url": self.url, "prompt": JUDGE_PROMPT}

    def _ask(self, prompt: Prompt, first: str, second: str) -> Label | None:
        from pluralrm.generate.sampling import SamplingParams

        content = JUDGE_PROMPT.format(prompt=render_prompt(prompt), a=first, b=second)
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=4, seed=0)
        [completion] = self.generator.complete([{"role": "user", "content": content}], params, 0)[:1]
        return parse_verdict(completion.text)

    def verdict(self, pair: dict[str, Any]) -> Label | None:
        """``"a"``, ``"b"`` or None (no answer, or the two orders disagree)."""
        forward = self._ask(pair["prompt"], pair["response_a"], pair["response_b"])
        backward = self._ask(pair["prompt"], pair["response_b"], pair["response_a"])
        flipped = {"a": "b", "b": "a"}.get(backward) if backward else None
        return forward if forward is not None and forward == flipped else None

    def close(self) -> None:
        close = getattr(self.generator, "close", None)
        if close is not None:
            close()


def confident(
    margins: np.ndarray, *, fraction: float = COLLECT.ai_fraction, margin: float | None = None
) -> np.ndarray:
    """Which pairs the AI judge decides: ``|margin| >= margin``, else the ``fraction`` largest ``|margin|``.

    Examples
    --------
    >>> confident(np.array([0.1, -3.0, 2.0, 0.5]), fraction=0.5).tolist()
    [False, True, True, False]
    """
    size = np.abs(np.asarray(margins, dtype=float))
    if margin is not None:
        return size >= margin
    if not 0 <= fraction <= 1:
        raise ValueError(f"ai_fraction must be in [0, 1], got {fraction}")
    n = round(fraction * len(size))
    chosen = np.zeros(len(size), dtype=bool)
    chosen[np.argsort(-size, kind="stable")[:n]] = True
    return chosen


def within_budget(pairs: Sequence[dict[str, Any]], budget: int | None) -> tuple[list[dict], list[dict]]:
    """(sent to people, over budget): the ``budget`` pairs with the smallest ``|ai_margin|`` go to people,
    since a label is worth most where the AI is least sure (None margins count as 0, in input order)."""
    if budget is None or budget >= len(pairs):
        return list(pairs), []
    if budget < 0:
        raise ValueError(f"label_budget must be >= 0, got {budget}")
    size = [abs(p["ai_margin"]) if p.get("ai_margin") is not None else 0.0 for p in pairs]
    order = sorted(range(len(pairs)), key=lambda i: (size[i], i))
    keep = set(order[:budget])
    return [p for i, p in enumerate(pairs) if i in keep], [p for i, p in enumerate(pairs) if i not in keep]


def count_reasons(responses: Sequence[dict[str, Any]], rules: Sequence[ResponseRule]) -> Counter:
    """How many responses each rule would drop on its own (rules overlap; the stage counts in order)."""
    return Counter(rule.name for response in responses for rule in rules if rule(response))
