"""OpenRLHF's ``--reward.remote_url FILE.py`` route: a pluralrm reward computed inside the trainer's process.

OpenRLHF loads a Python file given as ``--reward.remote_url`` and calls its ``reward_func(queries, prompts,
labels)`` (``SingleTurnAgentExecutor`` in ``openrlhf/utils/agent.py``; one sample per call, from worker
threads). This is such a file. It is configured by the environment, because OpenRLHF passes no arguments:

* ``PLURALRM_MODEL`` — the reward model directory (required);
* ``PLURALRM_USER`` — score with this user's profile (default: the general reward);
* ``PLURALRM_PROFILES`` — the profile store (default ``$PLURALRM_CACHE/profiles.sqlite``, like ``adapt``);
* ``PLURALRM_DEVICE`` — ``auto`` (default), ``cpu`` or ``cuda``.

Its path: ``python -c "import pluralrm.serve.openrlhf_reward_func as f; print(f.__file__)"``. Queries are
scored as the server scores them (:mod:`pluralrm.serve.openrlhf`): as pluralrm renders the conversation when
the prompt is sent, so a reward equals ``pluralrm score --user`` for the same (prompt, response). The model
is loaded on the first call, once per process.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pluralrm.config import FEATURIZE
from pluralrm.serve.openrlhf import openrlhf_texts

_lock = threading.Lock()
_scorer: _Scorer | None = None


class _Scorer:
    # A plain class, not a dataclass: OpenRLHF executes this file without registering it in sys.modules,
    # and @dataclass looks its module up there.
    def __init__(self, model: Any, featurizer: Any, profile: Any) -> None:
        self.model, self.featurizer, self.profile = model, featurizer, profile


def _load() -> _Scorer:
    global _scorer
    with _lock:
        if _scorer is None:
            from pluralrm.adapt.profiles import ProfileStore
            from pluralrm.rewards.reward_model import RewardModel

            directory = os.environ.get("PLURALRM_MODEL")
            if not directory:
                raise RuntimeError(
                    "set PLURALRM_MODEL to the reward model directory OpenRLHF should score with"
                )
            model = RewardModel.from_pretrained(directory)
            user = os.environ.get("PLURALRM_USER") or None
            profile = None
            if user is not None:
                profile = ProfileStore(os.environ.get("PLURALRM_PROFILES") or None).get(
                    user, head_set=model.head_set
                )
            featurizer = model.featurizer(device=os.environ.get("PLURALRM_DEVICE", FEATURIZE.device))
            _scorer = _Scorer(model=model, featurizer=featurizer, profile=profile)
        return _scorer


def reward_func(queries: list[str], prompts: list[Any], labels: list[Any], **kwargs: Any) -> dict[str, Any]:
    """Rewards of OpenRLHF's ``queries`` (prompt + response texts) in the shape OpenRLHF reads.

    Returns ``{"rewards", "scores", "extra_logs"}`` as torch tensors, like OpenRLHF's own example
    (``examples/python/reward_func.py``); ``extra_logs["pluralrm_rendered"]`` is 1 where the pair was
    re-rendered by pluralrm, 0 where the query was scored as sent.
    """
    import torch

    scorer = _load()
    texts, rendered = openrlhf_texts(scorer.featurizer.format, list(queries), prompts)
    with _lock:  # OpenRLHF calls from several threads; the backbone runs one batch at a time
        features = scorer.featurizer.encode(texts)
    rewards = torch.tensor(scorer.model.rewards(features, user=scorer.profile), dtype=torch.float32)
    return {
        "rewards": rewards,
        "scores": rewards,
        "extra_logs": {"pluralrm_rendered": torch.tensor(rendered)},
    }


__all__ = ["reward_func"]
