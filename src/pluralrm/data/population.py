"""A population of many simulated users on real responses, with a known Bayes ceiling.

Why this exists: the only users in the real data we hold are the four DSP domain users, and they share
little with one another (a domain user's direction lies mostly outside what the other three span), so no
prior from "the pool" can help them. Users made *in a backbone's feature space* share structure by
construction, which proves the algebra, not the product. The field's standard protocol (PersonalLLM,
LoRe) instead builds users as mixtures of several **independent preference signals over real responses**.

Here a signal is a *label* a response carries, never a feature: in the DSP domain set every query has five
real responses written in five styles (academy, business, entertainment, literature, normal), and which
response is which style is the record's ``models`` list. A user is a weight vector ``w ~ Dirichlet(α)``
over the signals; their utility of a response is the weight of its signal, and a pair's label is drawn
Bradley–Terry::

    P(a ≻ b) = σ((w[signal(a)] − w[signal(b)]) / temperature)

so the label noise is known and the Bayes-optimal accuracy on any pair — ``max(p, 1 − p)``, the accuracy
of a rule that knows ``w`` — is computed exactly and reported as the ceiling no learner can pass.

Prompt-disjoint by construction: the prompts are split (seeded) into pool prompts, unseen users'
adaptation prompts and unseen users' test prompts. Seen users label pool prompts only; each unseen user's
adaptation pairs and test pairs lie on prompts none of the pool saw, and on different prompts from each
other.

This module reads ranked-response records and writes pairs files; it never touches a backbone or a
feature (``tests/data/test_population.py`` fails if it does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pluralrm.atomic import write_json, write_jsonl
from pluralrm.config import POPULATION, PopulationConfig
from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.data.features import prompt_group
from pluralrm.data.splits import group_split

PARTS = ("seen", "unseen-adapt", "unseen-test")


@dataclass(frozen=True)
class Query:
    """One prompt and its responses, each with the signal (label) it carries."""

    prompt: str | list
    responses: tuple[str, ...]
    signals: tuple[str, ...]
    id: str


@dataclass
class Population:
    """The users' weights, their pairs per part and the Bayes ceiling of every pair.

    ``pairs[part]`` are TRL-style records (``prompt``, ``chosen``, ``rejected``, ``user``, ``id``);
    ``p_chosen[part][i]`` is the probability that the user prefers record ``i``'s chosen response under
    their true utility (the label was drawn from it), so ``max(p, 1 − p)`` is its Bayes-optimal accuracy.
    """

    config: PopulationConfig
    signals: tuple[str, ...]
    weights: dict[str, np.ndarray]
    pairs: dict[str, list[dict]]
    p_chosen: dict[str, np.ndarray]
    n_prompts: dict[str, int]

    @property
    def seen_users(self) -> list[str]:
        return [u for u in self.weights if u.startswith("seen-")]

    @property
    def unseen_users(self) -> list[str]:
        return [u for u in self.weights if u.startswith("unseen-")]

    def bayes_ceiling(self, part: str = "unseen-test") -> dict[str, float]:
        """Per user of ``part``: the expected accuracy of their true utility on their pairs (mean of
        ``max(p, 1 − p)``), the most any reward can score on those labels in expectation."""
        best = np.maximum(self.p_chosen[part], 1.0 - self.p_chosen[part])
        users = np.array([r["user"] for r in self.pairs[part]])
        return {u: float(best[users == u].mean()) for u in dict.fromkeys(users.tolist())}

    def save(self, out: str | Path) -> dict[str, Path]:
        """``seen.jsonl``, ``unseen-adapt.jsonl``, ``unseen-test.jsonl`` (every record names its ``user``)
        and ``population.json`` (settings, signals, each user's weights, each unseen user's Bayes
        ceiling); each written atomically. Returns the paths by part (and ``"manifest"``)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {part: out / f"{part}.jsonl" for part in PARTS}
        for part, path in paths.items():
            write_jsonl(path, self.pairs[part])
        ceiling = self.bayes_ceiling()
        manifest = {
            "config": asdict(self.config),
            "signals": list(self.signals),
            "counts": {part: len(self.pairs[part]) for part in PARTS},
            "prompts": self.n_prompts,
            "bayes_ceiling": {"mean": float(np.mean(list(ceiling.values()))), "per_user": ceiling},
            "weights": {user: w.round(6).tolist() for user, w in self.weights.items()},
        }
        paths_out = dict(paths)
        paths_out["manifest"] = out / "population.json"
        write_json(paths_out["manifest"], manifest)
        return paths_out


def queries_from_ranked(records: Sequence[dict], source: str = "records") -> list[Query]:
    """Ranked-response records (``prompt``, ``responses``, ``models``) as queries with labelled signals.

    ``models`` names each response's signal (for the DSP domain set, its style). A record without it, or
    with one response per signal missing, cannot carry signals and is refused by name.
    """
    queries = []
    for row, record in enumerate(records):
        location = RecordLocation(source, row=row)
        signals = record.get("models")
        if not signals:
            raise DataValidationError(location, "a population needs each response's signal", "models")
        if len(set(signals)) != len(signals):
            raise DataValidationError(location, "each response must carry a distinct signal", "models")
        if len(signals) < 2:
            raise DataValidationError(location, "a query needs two or more responses", "responses")
        queries.append(
            Query(
                prompt=record["prompt"],
                responses=tuple(record["responses"]),
                signals=tuple(signals),
                id=str(record.get("id", row)),
            )
        )
    return queries


def draw_weights(n_users: int, n_signals: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """``n_users`` weight vectors on the simplex, Dirichlet(α·1): α = 0.1 puts most weight on one signal
    per user, α = 1 spreads it (uniform on the simplex)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    return rng.dirichlet(np.full(n_signals, alpha), size=n_users)


def preference_probability(
    weights: np.ndarray, signal_a: np.ndarray | int, signal_b: np.ndarray | int, temperature: float
) -> np.ndarray:
    """P(a ≻ b) = σ((w[a] − w[b]) / temperature) for each row's signals (indices into ``weights``)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = (weights[..., signal_a] - weights[..., signal_b]) / temperature
    return np.exp(-np.logaddexp(0.0, -z))


def make_population(
    queries: Sequence[Query], config: PopulationConfig = POPULATION, *, source: str = ""
) -> Population:
    """Draw users, their pairs and their labels from ``queries`` (seeded by ``config.seed``).

    Every user's pairs are distinct (query, response, response) triples drawn uniformly from their part's
    prompts; the label is one Bradley–Terry draw from the user's utility. ``ValueError`` when a part has
    too few distinct pairs for the pairs asked of each user.
    """
    signals = tuple(sorted({s for q in queries for s in q.signals}))
    index = {s: i for i, s in enumerate(signals)}
    share = config.unseen_share
    if not 0 < share < 1:
        raise ValueError(f"unseen_share must be in (0, 1), got {share}")
    groups = [prompt_group(q.prompt) for q in queries]
    parts = group_split(groups, [1 - share, share / 2, share / 2], seed=config.seed)
    by_part = {part: [queries[i] for i in idx] for part, idx in zip(PARTS, parts, strict=True)}
    rng = np.random.default_rng(config.seed)
    weights = {}
    for prefix, n in (("seen", config.seen_users), ("unseen", config.unseen_users)):
        drawn = draw_weights(n, len(signals), config.alpha, rng)
        width = len(str(max(n - 1, 0)))
        weights.update({f"{prefix}-{u:0{width}d}": w for u, w in enumerate(drawn)})
    asked = {"seen": config.seen_pairs, "unseen-adapt": config.adapt_pairs, "unseen-test": config.test_pairs}
    users_of = {
        "seen": [u for u in weights if u.startswith("seen-")],
        "unseen-adapt": [u for u in weights if u.startswith("unseen-")],
        "unseen-test": [u for u in weights if u.startswith("unseen-")],
    }
    pairs: dict[str, list[dict]] = {}
    p_chosen: dict[str, np.ndarray] = {}
    for part in PARTS:
        candidates = _candidate_pairs(by_part[part])
        if asked[part] > len(candidates):
            raise ValueError(
                f"{source or 'queries'}: the {part} prompts hold {len(candidates)} distinct pairs, "
                f"fewer than the {asked[part]} asked of each user"
            )
        records, probabilities = [], []
        for user in users_of[part]:
            picks = rng.choice(len(candidates), size=asked[part], replace=False)
            w = weights[user]
            for q, i, j in (candidates[p] for p in picks):
                p = float(
                    preference_probability(w, index[q.signals[i]], index[q.signals[j]], config.temperature)
                )
                a_wins = bool(rng.random() < p)
                win, lose = (i, j) if a_wins else (j, i)
                records.append(
                    {
                        "prompt": q.prompt,
                        "chosen": q.responses[win],
                        "rejected": q.responses[lose],
                        "user": user,
                        "id": f"{q.id}/{q.signals[win]}>{q.signals[lose]}/{user}",
                    }
                )
                probabilities.append(p if a_wins else 1.0 - p)
        pairs[part] = records
        p_chosen[part] = np.array(probabilities)
    return Population(
        config=config,
        signals=signals,
        weights=weights,
        pairs=pairs,
        p_chosen=p_chosen,
        n_prompts={part: len(by_part[part]) for part in PARTS},
    )


def _candidate_pairs(queries: Sequence[Query]) -> list[tuple[Query, int, int]]:
    """Every unordered pair of distinct responses of each query."""
    return [
        (q, i, j) for q in queries for i in range(len(q.responses)) for j in range(i + 1, len(q.responses))
    ]
