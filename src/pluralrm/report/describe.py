"""An LM's description of a head, over an OpenAI-compatible endpoint — only when one is configured
(``--describe-url``); the automatic name never depends on it.

The LM sees the head's automatic name, its strongest attribute correlations, its distinctive words and
the pairs it separates most strongly, and is asked for one sentence. Its answer is data like any other:
the page escapes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pluralrm.config import GENERATE
from pluralrm.evaluate.interpret import HeadMeaning
from pluralrm.generate.endpoint import EndpointGenerator
from pluralrm.generate.sampling import SamplingParams

SYSTEM = (
    "You read what one direction of a reward model prefers and describe it in one plain sentence of at "
    "most 25 words. Say what the preferred responses do that the others do not."
)


def _clip(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def describe_prompt(meaning: HeadMeaning, pairs: Sequence[dict]) -> str:
    """The user message sent for one head (pairs as the head ranks them: preferred response first)."""
    ranked = sorted(meaning.correlations.items(), key=lambda kv: -abs(kv[1]))[:4]
    lines = [
        f"Automatic name: {meaning.name}",
        "Correlation of its margins with attribute differences: "
        + ", ".join(f"{a} {r:+.2f}" for a, r in ranked),
        f"Words of the responses it prefers: {', '.join(meaning.more_words) or '-'}",
        f"Words of the responses it dislikes: {', '.join(meaning.less_words) or '-'}",
    ]
    for i, pair in enumerate(pairs, start=1):
        lines.append(f"Pair {i}, prompt: {_clip(str(pair['prompt']), 300)}")
        lines.append(f"  one response: {_clip(pair['chosen'])}")
        lines.append(f"  other response: {_clip(pair['rejected'])}")
    return "\n".join(lines)


class EndpointDescriber:
    """``describer(meaning, pairs) -> str`` through :class:`pluralrm.generate.endpoint.EndpointGenerator`
    (its retries and API-key handling), greedy and short."""

    def __init__(self, url: str, model: str, *, api_key_env: str = GENERATE.api_key_env) -> None:
        self.generator = EndpointGenerator(url, model, api_key_env=api_key_env)
        self.params = SamplingParams(n=1, temperature=0.0, max_new_tokens=80, seed=0)

    def __call__(self, meaning: HeadMeaning, pairs: Sequence[dict]) -> str:
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": describe_prompt(meaning, pairs)},
        ]
        return self.generator.complete(messages, self.params, seed=0)[0].text

    def close(self) -> None:
        self.generator.close()
