"""End to end on tiny models: prompts → responses → filtering → simulated labellers through the labelling
server's real HTTP endpoints → ``pluralrm label export --per-labeller`` → ``pluralrm adapt`` per labeller →
each labeller's new reward agrees with their hidden preference on pairs they never labelled.

The labellers are synthetic users (:mod:`pluralrm.data.synthetic`): a hidden weight vector over known
response attributes; they answer by their utility, so the truth of every pair is known.
"""

from __future__ import annotations

import itertools

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.collect.filters import RewardJudge
from pluralrm.collect.pipeline import TO_LABEL, run_filter, run_prompts, run_responses
from pluralrm.collect.responses_stage import GeneratorSetting
from pluralrm.config import COLLECT, LABEL, replace
from pluralrm.data.synthetic import make_synthetic_preferences
from pluralrm.generate.sampling import Completion
from pluralrm.label.app import create_label_app
from tests.servers import served_in_thread

runner = CliRunner()
USERS = ("concise", "formal", "playful")


class PoolLM:
    """A stand-in LM that answers each prompt with that prompt's synthetic responses (known attributes)."""

    backend, model = "pool", "synthetic-pool"

    def __init__(self, responses: list[dict]) -> None:
        self.by_prompt: dict[str, list[str]] = {}
        for r in responses:
            self.by_prompt.setdefault(r["prompt"], []).append(r["text"])

    def complete(self, messages, params, seed):
        texts = self.by_prompt[messages[-1]["content"]][: params.n]
        return [Completion(t, "stop", self.model) for t in texts]


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dirs):
    """Labelling data (seed 0), the base reward model fitted on other synthetic data (seed 5), held-out
    pairs (seed 9), and the attribute vector of every response text."""
    from pluralrm.backbone import Featurizer, featurize_pairs, load_backbone
    from pluralrm.rewards.fitting import fit_reward_model

    root = tmp_path_factory.mktemp("e2e")
    bert = str(tiny_model_dirs["bert"])
    base = make_synthetic_preferences(n_prompts=48, seed=5)
    features = featurize_pairs(base.pairs, Featurizer(load_backbone(bert, dtype="float32")))
    model_dir = fit_reward_model(features, n_components=8, backbone_name=bert).save_pretrained(root / "model")
    labelling = make_synthetic_preferences(n_prompts=16, responses_per_prompt=5, seed=0)
    held_out = make_synthetic_preferences(n_prompts=12, responses_per_prompt=4, seed=9)
    attributes = {r["text"]: np.asarray(r["attributes"]) for r in labelling.responses + held_out.responses}
    return root, model_dir, labelling, held_out, attributes


def label_over_http(url: str, token: str, utility) -> int:
    """One simulated labeller: ask for the next pair until 204, answer by hidden utility; labels posted."""
    posted = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while (shown := client.get("/api/next")).status_code == 200:
            pair = shown.json()
            u1, u2 = utility(pair["response_1"]), utility(pair["response_2"])
            choice = "1" if u1 > u2 else "2" if u2 > u1 else "tie"
            body = {"pair_id": pair["pair_id"], "choice": choice, "tags": [], "seconds": 1.0}
            client.post("/api/labels", json=body).raise_for_status()
            posted += 1
        assert shown.status_code == 204
    return posted


def test_labellers_clicks_become_their_own_rewards(world, tmp_path):
    from pluralrm.adapt import ProfileStore
    from pluralrm.label.io import read_pairs
    from pluralrm.label.store import LabelStore
    from pluralrm.rewards.reward_model import RewardModel

    _, model_dir, labelling, held_out, attributes = world
    users = labelling.users
    project = tmp_path / "proj"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(sorted({r["prompt"] for r in labelling.responses})) + "\n")
    model = RewardModel.from_pretrained(model_dir)

    run_prompts(project, [prompts])
    setting = GeneratorSetting("synthetic-pool", n=5)
    run_responses(project, [setting], generators={setting: PoolLM(labelling.responses)})
    config = replace(COLLECT, pairs_per_prompt=6, ai_fraction=0.2, max_repeated=0.5)
    manifest = run_filter(project, judge=RewardJudge(model, name="base"), config=config)
    n_people = manifest.outputs[TO_LABEL]
    assert n_people >= 40

    store = LabelStore.of_project(project)
    store.import_pairs(read_pairs(project / TO_LABEL))
    tokens = {name: store.add_labeller(name) for name in USERS}
    label_app = create_label_app(store, replace(LABEL, labels_per_pair=len(USERS)))
    with served_in_thread(label_app, "the labelling server") as url:
        for name in USERS:
            posted = label_over_http(
                url, tokens[name], lambda text, w=users[name]: float(w @ attributes[text])
            )
            assert posted == n_people  # every labeller saw every pair once
        assert httpx.get(f"{url}/api/next").status_code in (401, 403)  # no token: nothing

    exported = tmp_path / "per-user"
    result = runner.invoke(app, ["label", "export", str(project), str(exported), "--per-labeller"])
    assert result.exit_code == 0, result.output
    profiles = tmp_path / "profiles.sqlite"
    for name in USERS:
        args = ["adapt", str(model_dir), "--user", name, "--pairs", str(exported / f"{name}.jsonl")]
        result = runner.invoke(app, [*args, "--store", str(profiles), "--no-cache"])
        assert result.exit_code == 0, result.output

    # Pairs never labelled: responses of other prompts; truth = the hidden utility.
    store_profiles = ProfileStore(profiles)
    by_prompt: dict[str, list[str]] = {}
    for r in held_out.responses:
        by_prompt.setdefault(r["prompt"], []).append(r["text"])
    pairs = [(p, a, b) for p, texts in by_prompt.items() for a, b in itertools.combinations(texts, 2)]
    rewards_a = lambda **kw: model.rewards([(p, a) for p, a, _ in pairs], **kw)  # noqa: E731
    rewards_b = lambda **kw: model.rewards([(p, b) for p, _, b in pairs], **kw)  # noqa: E731
    general = rewards_a() - rewards_b()
    accuracy = {}
    for name in USERS:
        truth = np.array([users[name] @ (attributes[a] - attributes[b]) for _, a, b in pairs])
        profile = store_profiles.get(name)
        personal = rewards_a(user=profile) - rewards_b(user=profile)
        decided = truth != 0
        accuracy[name] = (
            float(np.mean(np.sign(personal[decided]) == np.sign(truth[decided]))),
            float(np.mean(np.sign(general[decided]) == np.sign(truth[decided]))),
        )
    print("held-out agreement (personal, general head):", accuracy)
    for name, (personal_acc, _) in accuracy.items():
        assert personal_acc > 0.6, (name, accuracy)
    assert np.mean([p for p, _ in accuracy.values()]) > np.mean([g for _, g in accuracy.values()])


def test_real_prompts_and_responses_through_the_rules(tmp_path):
    """Real files (skipped without ../shared/data): HH-harmless prompts and the DSP domain set's responses
    through the prompt stage and the rule filters; the pairs file goes into the label store whole. (The
    MiniLM judge, labellers over HTTP and adapt on real data are measured by benchmarks/collect_stages.py.)"""
    import gzip
    import json

    from pluralrm.collect.provenance import read_records
    from pluralrm.data import DSP_BASELINE, DSP_DOMAINS
    from pluralrm.label.io import read_pairs
    from pluralrm.label.store import LabelStore
    from tests.conftest import shared_file

    hh = shared_file("hh-rlhf-harmless/test-dev.jsonl.gz")
    dsp = shared_file("dsp/domain_specific_preference.test-dev.json.gz")
    with gzip.open(dsp, "rt") as handle:
        records = json.load(handle)[:60]
    names = (*DSP_DOMAINS, DSP_BASELINE)
    wide = tmp_path / "dsp-wide.jsonl"
    wide.write_text(
        "".join(
            json.dumps(
                {"id": str(i), "prompt": r["query"]}
                | {f"response_{j}": r["responses"][n] for j, n in enumerate(names, 1)}
            )
            + "\n"
            for i, r in enumerate(records)
        )
    )
    project = tmp_path / "proj"
    prompts = run_prompts(project, [wide, hh], limit=60, skip_invalid=True)
    assert prompts.filters[0].records_out > 60  # DSP queries plus HH conversations, merged by content
    responses = run_responses(project, from_wide=[wide])
    assert responses.outputs["responses.jsonl"] == 300  # HH prompts have no responses: left out
    manifest = run_filter(project, config=replace(COLLECT, pairs_per_prompt=10))
    rows = {f.name: (f.records_in, f.records_out) for f in manifest.filters}
    assert rows["empty"] == (300, 299) and rows["truncated"] == (299, 299)  # one DSP answer is ""
    assert rows["refusal"][1] < rows["refusal"][0]  # DSP has "As an AI language model, I …" answers
    dropped = read_records(project / "dropped.jsonl")
    assert [d["text"] for d in dropped if d["reason"] == "empty"] == [""]
    assert any(d["reason"] == "refusal" and "as an ai" in d["text"].lower() for d in dropped)
    assert sum(d["reason"] == "wrong-language" for d in dropped) <= 3  # English data: few false positives
    store = LabelStore.of_project(project)
    store.import_pairs(read_pairs(project / TO_LABEL))
    assert len(store.pairs()) == manifest.outputs[TO_LABEL] > 400
