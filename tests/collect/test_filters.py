"""Each named filter of the filtering stage, on texts whose verdict is known."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi import FastAPI, Request

import pluralrm.collect.filters as F
from pluralrm.generate.sampling import Completion
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel
from tests.servers import served_in_thread

ENGLISH = "The quickest way to learn a language is to speak it every day with people who are patient."
FRENCH = "La meilleure façon d'apprendre une langue consiste à parler chaque jour avec des gens patients."


def r(text: str, finish: str = "stop") -> dict:
    return {"text": text, "finish": finish}


def test_empty_and_truncated():
    assert F.Empty()(r("   ")) and F.Empty()(r("a")) and not F.Empty()(r("ok"))
    assert F.Empty(min_chars=5)(r("four")) and not F.Empty(min_chars=4)(r("four"))
    assert F.Truncated()(r(ENGLISH, "length")) and not F.Truncated()(r(ENGLISH, "stop"))


def test_repeated_ngrams_share_and_rule():
    loop = "I like it. " * 10
    # 30 words, 28 trigrams, 3 distinct: 25/28 repeat.
    assert F.repeated_share(loop, 3) == pytest.approx(25 / 28)
    assert F.repeated_share(ENGLISH, 3) == 0.0
    rule = F.RepeatedNgrams(n=3, max_share=0.3)
    assert rule(r(loop)) and not rule(r(ENGLISH))
    assert not F.RepeatedNgrams(n=3, max_share=0.95)(r(loop))


def test_wrong_language_by_script_and_by_stopwords():
    rule = F.WrongLanguage(min_stopwords=0.08)
    assert not rule(r(ENGLISH))
    assert rule(r(FRENCH))  # Latin script, no English function words
    assert rule(r("这是一个用中文写的回答，没有英文。"))  # another script
    assert not rule(r("Paris."))  # too short for the stop-word test: passes (a stated limit)
    fruit = "1. Apples\n2. Bananas\n3. Oranges\n4. Mangoes\n5. Grapes\n6. Kiwi\n7. Melon\n8. Plums\n9. Figs"
    table = (
        "| Company | Year |\n|---|---|\n| Google DeepMind | 2010 |\n| OpenAI | 2015 |\n| Anthropic | 2021 |"
    )
    assert not rule(r(fruit)) and not rule(r(table))  # no prose lines: nothing to judge
    assert rule(r("1. Apples\n" + FRENCH))  # the French prose line is judged
    assert F.prose_words("a b c\none two three four five six") == [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
    ]
    assert F.stopword_share("the cat and the dog") == pytest.approx(3 / 5)
    assert F.latin_share("abc日本") == pytest.approx(3 / 5)


def test_refusal_phrasings_within_the_window():
    rule = F.Refusal()
    assert rule(r("I'm sorry, but I can't help with that request."))
    assert rule(r("As an AI language model, I cannot browse the internet."))
    assert rule(r("I cannot assist with this."))
    assert not rule(r(ENGLISH))
    assert not rule(r("Verse 1:\nI walk these streets\nAnd I can't help but feel the longing grow"))
    assert not rule(r("Sure! " + "x" * 300 + " I cannot help with that."))  # beyond the window
    assert not F.Refusal(window=10)(r("Well... I'm sorry, but I can't do it."))


def test_default_rules_run_in_order_and_count_overlaps():
    rules = F.default_response_rules()
    names = ["empty", "truncated", "repeated-ngrams", "wrong-language", "refusal"]
    assert [rule.name for rule in rules] == names
    counts = F.count_reasons([r(""), r("go go go go go go go go go go", "length"), r(ENGLISH)], rules)
    assert counts == {"empty": 1, "truncated": 1, "repeated-ngrams": 1}


def _responses():
    return [
        {"response_id": f"r{i}", "prompt_id": p, "prompt": f"Q{p}?", "text": t}
        for i, (p, t) in enumerate(
            [("1", "alpha"), ("1", "beta"), ("1", "gamma"), ("2", "delta"), ("2", "eps")]
        )
    ]


def test_candidate_pairs_are_within_a_prompt_with_stable_ids():
    pairs = F.candidate_pairs(_responses())
    assert [(p["a_id"], p["b_id"]) for p in pairs] == [("r0", "r1"), ("r0", "r2"), ("r1", "r2"), ("r3", "r4")]
    assert pairs[0]["response_a"] == "alpha" and pairs[0]["prompt"] == "Q1?"
    assert [p["pair_id"] for p in pairs] == [p["pair_id"] for p in F.candidate_pairs(_responses())]
    assert len({p["pair_id"] for p in pairs}) == 4


def test_near_identical_pairs():
    rule = F.NearIdentical(threshold=0.9)
    same = {"response_a": ENGLISH, "response_b": ENGLISH + " "}
    close = {"response_a": ENGLISH, "response_b": ENGLISH.replace("patient", "patients")}
    far = {"response_a": ENGLISH, "response_b": "Practice daily."}
    assert rule(same) and rule(close) and not rule(far)
    assert F.text_similarity("abcd", "abce") == pytest.approx(0.75)


def test_pairs_per_prompt_caps_each_prompt_reproducibly():
    pairs = F.candidate_pairs(_responses())
    capped = F.pairs_per_prompt(pairs, 2, seed=0)
    assert sum(p["prompt_id"] == "1" for p in capped) == 2 and sum(p["prompt_id"] == "2" for p in capped) == 1
    assert capped == F.pairs_per_prompt(pairs, 2, seed=0)
    assert [p for p in pairs if p in capped] == capped  # input order kept


class _LengthFeatures:
    """Features of a response: its length and its number of '!' (a known reward direction)."""

    def encode_conversations(self, prompts, responses):
        return np.array([[len(t), t.count("!")] for t in responses], dtype=np.float32)


def _model(coef):
    model = RewardModel(namespace={}, backbone_name="", general=LinearRewardHead.from_coef(np.array(coef)))
    model._featurizer = _LengthFeatures()
    return model


def test_reward_judge_margins_go_through_the_one_scoring_path():
    pairs = [
        {"prompt": "Q", "response_a": "long answer", "response_b": "short"},
        {"prompt": "Q", "response_a": "hi!!", "response_b": "hello"},
    ]
    judge = F.RewardJudge(_model([1.0, 0.0]), name="len")
    np.testing.assert_allclose(judge.margins(pairs), [11 - 5, 4 - 5])
    np.testing.assert_allclose(F.RewardJudge(_model([0.0, 2.0])).margins(pairs), [0.0, 4.0])
    assert judge.describe()["model"] == "len"


def test_reward_judge_under_a_profile_records_the_user_in_provenance():
    from pluralrm.adapt import UserProfile
    from pluralrm.rewards.decomposed import DecomposedRewardModel

    model = _model([1.0, 0.0])
    # Heads on the two features: pc1 reads length (larger spread), pc2 reads '!'.
    model.decomposed = DecomposedRewardModel().fit(np.array([[3.0, 0.1], [-3.0, -0.1], [0.0, 1.0]]))
    weights = np.linalg.solve(model.decomposed.components_.T, [0.0, 1.0])  # the user likes '!' only
    profile = UserProfile(user="alice", weights=weights, head_set=model.head_set, method="manual", n_pairs=0)
    judge = F.RewardJudge(model, user=profile, name="len")
    pairs = [{"prompt": "Q", "response_a": "hi!!", "response_b": "hello there"}]
    np.testing.assert_allclose(judge.margins(pairs), [2.0], atol=1e-9)
    assert judge.describe() == {"judge": "reward", "model": "len", "head": None, "user": "alice"}
    assert F.RewardJudge(model).describe()["user"] is None


def test_confident_by_fraction_or_by_margin():
    margins = np.array([0.1, -3.0, 2.0, 0.5, -0.2])
    assert F.confident(margins, fraction=0.4).tolist() == [False, True, True, False, False]
    assert F.confident(margins, fraction=0.0).sum() == 0
    assert F.confident(margins, margin=0.5).tolist() == [False, True, True, True, False]
    with pytest.raises(ValueError, match="ai_fraction"):
        F.confident(margins, fraction=1.5)


def test_label_budget_keeps_the_most_uncertain():
    pairs = [{"pair_id": str(i), "ai_margin": m} for i, m in enumerate([3.0, -0.1, None, 1.0, 0.05])]
    people, over = F.within_budget(pairs, 3)
    assert [p["pair_id"] for p in people] == ["1", "2", "4"] and [p["pair_id"] for p in over] == ["0", "3"]
    assert F.within_budget(pairs, None) == (pairs, [])


class _ScriptedLM:
    """A stand-in generator that answers the judge prompt by a rule (prefers the longer response)."""

    backend, model = "fake", "judge-lm"

    def __init__(self, position_bias: bool = False) -> None:
        self.position_bias = position_bias
        self.asked = 0

    def complete(self, messages, params, seed):
        self.asked += 1
        assert params.temperature == 0.0 and params.n == 1
        text = messages[-1]["content"]
        a = text.split("[Response A]\n")[1].split("\n\n[Response B]")[0]
        b = text.split("[Response B]\n")[1]
        answer = "A" if self.position_bias or len(a) > len(b) else "B"
        return [Completion(answer + ".", "stop", self.model)]


def test_lm_judge_counts_only_verdicts_that_survive_swapping():
    pair = {"prompt": "Q", "response_a": "a much longer answer", "response_b": "short"}
    fair = F.LMJudge("http://unused", "judge-lm", generator=_ScriptedLM())
    assert fair.verdict(pair) == "a" and fair.generator.asked == 2
    assert fair.verdict({**pair, "response_a": "x", "response_b": "longer one"}) == "b"
    biased = F.LMJudge("http://unused", "judge-lm", generator=_ScriptedLM(position_bias=True))
    assert biased.verdict(pair) is None  # says A in both orders: no verdict
    assert F.parse_verdict("**B**") == "b" and F.parse_verdict("I think A") is None


@pytest.fixture
def judge_server():
    """A stand-in OpenAI-compatible server whose 'LM' prefers the longer response (uvicorn thread)."""

    app = FastAPI()
    seen: list[dict] = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request):  # Request resolves from module globals (string annotations)
        payload = await request.json()
        seen.append(payload)
        text = payload["messages"][-1]["content"]
        a = text.split("[Response A]\n")[1].split("\n\n[Response B]")[0]
        b = text.split("[Response B]\n")[1]
        answer = "A" if len(a) > len(b) else "B"
        choice = {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
        return {"model": payload["model"], "choices": [choice]}

    with served_in_thread(app, "the stand-in judge") as url:
        yield url, seen


def test_lm_judge_over_an_openai_compatible_endpoint(judge_server):
    url, seen = judge_server
    judge = F.LMJudge(url, "judge-7b", backoff_s=0.01)
    try:
        assert judge.verdict({"prompt": "Q?", "response_a": "short", "response_b": "a longer answer"}) == "b"
    finally:
        judge.close()
    assert len(seen) == 2 and {p["model"] for p in seen} == {"judge-7b"}
    assert seen[0]["temperature"] == 0.0 and seen[0]["max_tokens"] == 4
    assert "[Response A]\nshort" in seen[0]["messages"][0]["content"]
    assert "[Response A]\na longer answer" in seen[1]["messages"][0]["content"]  # the swapped order


def test_rules_can_be_skipped_by_name_and_a_typo_is_an_error():
    from pluralrm.config import COLLECT, replace

    names = [
        rule.name for rule in F.default_response_rules(replace(COLLECT, skip_rules=("refusal", "truncated")))
    ]
    assert names == ["empty", "repeated-ngrams", "wrong-language"]
    with pytest.raises(ValueError, match=r"unknown rule\(s\) to skip: \['refusals'\]"):
        F.default_response_rules(replace(COLLECT, skip_rules=("refusals",)))
