"""Built-in pluralistic preference data with known ground truth.

Responses to everyday prompts are composed so that six attributes vary independently and are *known*:
``length``, ``formality``, ``refusal`` (safety refusal vs compliance), ``humour``, ``list_structure`` and
``empathy``. Simulated users hold different weights over those attributes and label pairs by a
Bradley–Terry draw on their utility ``u(y) = w · a(y)``. Because the attribute values and user weights
are kept, tests and the demo can check that later stages (PCA heads, user adaptation) recover them.

Everything is deterministic given ``seed``.

Examples
--------
>>> data = make_synthetic_preferences(n_prompts=4, responses_per_prompt=3, pairs_per_prompt=1, seed=0)
>>> sorted(data.users)[:2]
['cautious', 'concise']
>>> data.pairs[0]["user"] in data.users
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ATTRIBUTES = ("length", "formality", "refusal", "humour", "list_structure", "empathy")

_TOPICS: dict[str, tuple[str, list[str]]] = {
    "sleep": (
        "How can I sleep better at night?",
        [
            "keep a regular bedtime, even at weekends",
            "avoid caffeine after lunch",
            "keep the bedroom cool and dark",
            "put screens away an hour before bed",
            "get some daylight in the morning",
            "write tomorrow's worries on paper before bed",
        ],
    ),
    "budget": (
        "How do I start a monthly budget?",
        [
            "list every fixed expense first",
            "track a month of spending before cutting anything",
            "set aside savings on payday",
            "use separate accounts for bills and fun money",
            "review the budget every Sunday",
            "plan for irregular costs like gifts",
        ],
    ),
    "running": (
        "How should a beginner start running?",
        [
            "alternate one minute of running with two of walking",
            "run three times a week, not every day",
            "buy shoes fitted at a running shop",
            "keep the pace slow enough to talk",
            "add ten percent more distance per week at most",
            "stretch gently after each run",
        ],
    ),
    "bread": (
        "How do I bake my first loaf of bread?",
        [
            "weigh the flour instead of using cups",
            "let the dough rise until it doubles",
            "knead for about ten minutes",
            "preheat the oven with a tray of water",
            "bake until the loaf sounds hollow underneath",
            "let it cool before slicing",
        ],
    ),
    "python": (
        "How can I learn Python programming?",
        [
            "write a small script every day",
            "read other people's code on open projects",
            "learn to use the debugger early",
            "solve short exercises before big projects",
            "use version control from the first week",
            "build something you will use yourself",
        ],
    ),
    "garden": (
        "How do I grow tomatoes on a balcony?",
        [
            "choose a dwarf variety for pots",
            "use a container of at least twenty litres",
            "water deeply in the morning",
            "give them six hours of sun",
            "feed with tomato fertiliser weekly",
            "tie the stems to a stake as they grow",
        ],
    ),
    "interview": (
        "How do I prepare for a job interview?",
        [
            "research the company's recent news",
            "prepare three stories about your achievements",
            "practise answers out loud",
            "prepare questions for the interviewer",
            "plan your route and arrive early",
            "send a short thank-you note afterwards",
        ],
    ),
    "move": (
        "What should I do when moving to a new city?",
        [
            "register with a local doctor early",
            "walk around your neighbourhood in the first week",
            "join a club or class to meet people",
            "set up utilities before you arrive",
            "keep important documents in one folder",
            "learn the public transport routes",
        ],
    ),
    "study": (
        "How can I study more effectively for exams?",
        [
            "test yourself instead of rereading",
            "space your sessions over several days",
            "study in blocks of forty minutes",
            "explain topics to a friend",
            "sleep well before the exam",
            "mix different subjects in one session",
        ],
    ),
    "travel": (
        "How do I plan a cheap trip abroad?",
        [
            "book flights midweek",
            "travel outside the peak season",
            "stay in guesthouses or hostels",
            "eat where the locals eat",
            "use a card without foreign fees",
            "buy a city transport pass",
        ],
    ),
    "stress": (
        "How can I handle stress at work?",
        [
            "take a short walk at lunchtime",
            "break big tasks into small steps",
            "say no to tasks that are not yours",
            "keep a list of what you finished each day",
            "talk to your manager about priorities",
            "protect one evening a week for yourself",
        ],
    ),
    "plants": (
        "How do I keep houseplants alive?",
        [
            "check the soil before watering",
            "use pots with drainage holes",
            "put them near a bright window",
            "wipe dust off the leaves",
            "repot them every two years",
            "feed them in spring and summer",
        ],
    ),
}

_FORMAL = ("It is advisable to {tip}.", "One should {tip}.", "It is recommended to {tip}.")
_INFORMAL = ("Just {tip}!", "Honestly, {tip}.", "You gotta {tip}.")
_FORMAL_OPEN = "Certainly. Please consider the following recommendations."
_INFORMAL_OPEN = "Sure thing, here's the deal."
_EMPATHY = (
    "I understand this can feel overwhelming, and it is completely okay to ask for help.",
    "That sounds like a lot to deal with, and your feelings about it are valid.",
    "I hear you; many people find this hard at first, so be kind to yourself.",
)
_HUMOUR = (
    "Bonus tip: if all else fails, blame the cat. It works for me.",
    "Fun fact: I tried this once and now my houseplants send me thank-you cards.",
    "Warning: side effects may include being unbearably smug at parties.",
)
_REFUSAL_FORMAL = "I am sorry, but I cannot provide guidance on this request."
_REFUSAL_INFORMAL = "Nah, sorry, I'm not going to help with that one."


@dataclass
class SyntheticPreferences:
    """Synthetic pairs plus the ground truth that produced them.

    Attributes
    ----------
    pairs : list of dict
        Preference-pair records (``prompt``, ``chosen``, ``rejected``, ``id``, ``source``, ``subset``,
        ``user``) with two extra ground-truth columns, ``chosen_attributes`` and ``rejected_attributes``
        (one value per name in ``attribute_names``).
    attribute_names : tuple of str
    users : dict of str -> ndarray of shape (n_attributes,)
        Each simulated user's utility weights.
    responses : list of dict
        Every generated response: ``prompt``, ``text``, ``attributes``.
    """

    pairs: list[dict]
    attribute_names: tuple[str, ...]
    users: dict[str, np.ndarray]
    responses: list[dict] = field(default_factory=list)


def default_users() -> dict[str, np.ndarray]:
    """Seven users whose tastes conflict on purpose (weights over :data:`ATTRIBUTES`)."""
    table = {
        #             length formality refusal humour list empathy
        "concise": (-1.0, 0.3, -0.5, 0.0, 0.0, -0.3),
        "formal": (0.3, 1.0, 0.0, -0.8, 0.3, 0.0),
        "playful": (0.0, -0.8, -0.5, 1.0, 0.0, 0.3),
        "cautious": (0.0, 0.3, 1.2, -0.3, 0.0, 0.5),
        "thorough": (1.0, 0.0, -1.0, 0.0, 0.5, 0.0),
        "structured": (0.3, 0.3, -0.5, 0.0, 1.2, 0.0),
        "empathetic": (0.0, -0.3, 0.0, 0.3, -0.3, 1.2),
    }
    return {name: np.asarray(w, dtype=np.float64) for name, w in table.items()}


def compose_response(tips: list[str], attributes: dict[str, float], rng: np.random.Generator) -> str:
    """Render one response whose surface form follows ``attributes`` (values in [0, 1])."""
    formal = attributes["formality"] >= 0.5
    parts: list[str] = []
    if attributes["empathy"] >= 0.5:
        parts.append(_EMPATHY[rng.integers(len(_EMPATHY))])
    if attributes["refusal"] >= 0.5:
        parts.append(_REFUSAL_FORMAL if formal else _REFUSAL_INFORMAL)
    else:
        parts.append(_FORMAL_OPEN if formal else _INFORMAL_OPEN)
        templates = _FORMAL if formal else _INFORMAL
        sentences = [templates[rng.integers(len(templates))].format(tip=tip) for tip in tips]
        if attributes["list_structure"] >= 0.5:
            parts.append("\n".join(f"{i}. {s}" for i, s in enumerate(sentences, start=1)))
        else:
            parts.append(" ".join(sentences))
    if attributes["humour"] >= 0.5:
        parts.append(_HUMOUR[rng.integers(len(_HUMOUR))])
    return "\n\n".join(parts)


def _sample_response(prompt_tips: list[str], rng: np.random.Generator) -> tuple[str, np.ndarray]:
    refusal = float(rng.random() < 0.3)
    n_tips = 0 if refusal else int(rng.integers(1, 6))
    values = {
        "length": (n_tips - 1) / 4 if n_tips else 0.0,
        "formality": float(rng.random() < 0.5),
        "refusal": refusal,
        "humour": float(rng.random() < 0.4),
        "list_structure": 0.0 if refusal or n_tips < 2 else float(rng.random() < 0.5),
        "empathy": float(rng.random() < 0.4),
    }
    tips = list(rng.choice(prompt_tips, size=n_tips, replace=False)) if n_tips else []
    text = compose_response(tips, values, rng)
    return text, np.array([values[a] for a in ATTRIBUTES])


def make_synthetic_preferences(
    *,
    n_prompts: int = 48,
    responses_per_prompt: int = 6,
    pairs_per_prompt: int = 3,
    users: dict[str, np.ndarray] | None = None,
    beta: float = 4.0,
    seed: int = 0,
) -> SyntheticPreferences:
    """Generate pluralistic preference pairs with their ground truth.

    Parameters
    ----------
    n_prompts : int
        Prompts to generate; topics are cycled with varied phrasings.
    responses_per_prompt : int
        Distinct responses composed per prompt (shared by all users, as in a real labelling pool).
    pairs_per_prompt : int
        Pairs each user labels per prompt.
    users : dict, optional
        Name → weight vector over :data:`ATTRIBUTES`; defaults to :func:`default_users`.
    beta : float
        Bradley–Terry inverse temperature of the users' labels; larger is less noisy.
    seed : int
        Seed of every random choice.
    """
    if responses_per_prompt < 2:
        raise ValueError(f"responses_per_prompt must be at least 2, got {responses_per_prompt}")
    rng = np.random.default_rng(seed)
    users = default_users() if users is None else {k: np.asarray(v, float) for k, v in users.items()}
    for name, weights in users.items():
        if weights.shape != (len(ATTRIBUTES),):
            raise ValueError(f"user {name!r}: expected {len(ATTRIBUTES)} weights, got shape {weights.shape}")
    prefixes = ("", "Quick question: ", "I need advice. ", "Please help: ")
    topics = sorted(_TOPICS)
    responses: list[dict] = []
    pairs: list[dict] = []
    for p in range(n_prompts):
        topic = topics[p % len(topics)]
        question, tips = _TOPICS[topic]
        prompt = prefixes[(p // len(topics)) % len(prefixes)] + question
        seen: set[str] = set()
        pool: list[tuple[str, np.ndarray]] = []
        while len(pool) < responses_per_prompt:
            text, attrs = _sample_response(tips, rng)
            if text not in seen:
                seen.add(text)
                pool.append((text, attrs))
        responses.extend({"prompt": prompt, "text": t, "attributes": a.tolist()} for t, a in pool)
        for user, weights in users.items():
            for k in range(pairs_per_prompt):
                i, j = rng.choice(len(pool), size=2, replace=False)
                delta = float(weights @ (pool[i][1] - pool[j][1]))
                if rng.random() >= 1.0 / (1.0 + np.exp(-beta * delta)):
                    i, j = j, i
                pairs.append(
                    {
                        "prompt": prompt,
                        "chosen": pool[i][0],
                        "rejected": pool[j][0],
                        "id": f"synthetic:{p}/{user}/{k}",
                        "source": "synthetic",
                        "subset": topic,
                        "user": user,
                        "chosen_attributes": pool[i][1].tolist(),
                        "rejected_attributes": pool[j][1].tolist(),
                    }
                )
    return SyntheticPreferences(pairs=pairs, attribute_names=ATTRIBUTES, users=users, responses=responses)
