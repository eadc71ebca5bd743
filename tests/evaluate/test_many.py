"""Analysis of many rewarded responses per prompt: exact values on hand-made arrays, brute force, the CLI."""

import csv
import itertools
import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.data import DataValidationError
from pluralrm.evaluate.many.curves import (
    agreement,
    best_of_n_curve,
    default_ns,
    expected_best_of_n,
    pairwise_agreement,
    top1_agreement,
    win_scores,
)
from pluralrm.evaluate.many.report import match_records
from pluralrm.evaluate.many.responses import generator_stats, length_correlation
from pluralrm.evaluate.many.rewardbench import EXAMPLE_COUNTS, rewardbench_accuracy, section_of

runner = CliRunner()


def brute_force_best_of_n(rewards, values, n):
    """Every n-subset; the pick is a uniformly random one of the subset's maxima."""
    expected, win = [], []
    for subset in itertools.combinations(range(len(rewards)), n):
        top = max(rewards[i] for i in subset)
        picks = [i for i in subset if rewards[i] == top]
        expected.append(np.mean([values[i] for i in picks]))
        win.append(np.mean([np.mean((values[i] > values) + 0.5 * (values[i] == values)) for i in picks]))
    return np.mean(expected), np.mean(win)


@pytest.mark.parametrize("seed", range(6))
def test_best_of_n_is_the_brute_force_expectation_over_all_subsets_with_ties(seed):
    rng = np.random.default_rng(seed)
    n_responses = int(rng.integers(1, 9))
    rewards = rng.integers(0, 4, size=n_responses).astype(float)  # few values: many ties
    judge = rng.integers(0, 3, size=n_responses).astype(float)
    ns = list(range(1, n_responses + 2))
    for values in (None, judge):
        expected, win = expected_best_of_n(rewards, ns, values)
        v = rewards if values is None else values
        for k, n in enumerate(ns[:-1]):
            np.testing.assert_allclose(
                (expected[k], win[k]), brute_force_best_of_n(rewards, v, n), rtol=1e-12
            )
        assert np.isnan(expected[-1]) and np.isnan(win[-1])  # n > N
        assert win[0] == pytest.approx(0.5)  # one random response against another


def test_best_of_n_matches_monte_carlo_where_enumeration_is_out_of_reach():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=40)
    judge = rewards + rng.normal(size=40)  # a noisy proxy: the judge's value of the pick
    expected, win = expected_best_of_n(rewards, [10], judge)
    draws = np.array([rng.choice(40, size=10, replace=False) for _ in range(20000)])
    picks = draws[np.arange(len(draws)), np.argmax(rewards[draws], axis=1)]
    mc_value = judge[picks]
    mc_win = win_scores(judge)[picks]
    assert abs(expected[0] - mc_value.mean()) < 4 * mc_value.std() / np.sqrt(len(draws))
    assert abs(win[0] - mc_win.mean()) < 4 * mc_win.std() / np.sqrt(len(draws))


def test_best_of_n_hand_values_and_win_rate_ties_count_half():
    # rewards 1, 2, 2: any 2-subset holds a 2, so the max is 2; a 2 beats a random one of the three
    # with probability (1 + ½·2)/3 = 2/3.
    expected, win = expected_best_of_n([1.0, 2.0, 2.0], [1, 2, 3])
    np.testing.assert_allclose(expected, [5 / 3, 2, 2])
    np.testing.assert_allclose(win, [0.5, 2 / 3, 2 / 3])
    # Picked by the reward, valued by a judge: ties in the reward average the judge over the tied pair.
    expected, win = expected_best_of_n([1.0, 2.0, 2.0], [3], [9.0, 0.0, 4.0])
    assert expected[0] == pytest.approx(2.0) and win[0] == pytest.approx((0.5 / 3 + 1.5 / 3) / 2)
    np.testing.assert_allclose(win_scores([1.0, 2.0, 2.0]), [0.5 / 3, 2 / 3, 2 / 3])


def test_own_win_rate_without_ties_depends_on_n_and_big_n_only():
    rewards = np.random.default_rng(3).normal(size=9)
    ns = [1, 2, 3, 5, 9]
    _, win = expected_best_of_n(rewards, ns)
    np.testing.assert_allclose(win, [(n * 10 / (n + 1) - 0.5) / 9 for n in ns], rtol=1e-12)


def test_best_of_n_curve_averages_prompts_that_have_n_responses():
    rewards = [np.array([0.0, 1.0]), np.array([10.0, 20.0, 30.0, 40.0])]
    rows = best_of_n_curve(rewards, [1, 2, 4], n_resamples=50)
    by_n = {row["n"]: row for row in rows}
    assert by_n[1]["expected"] == pytest.approx((0.5 + 25.0) / 2) and by_n[1]["n_prompts"] == 2
    assert by_n[2]["expected"] == pytest.approx((1.0 + (20 + 2 * 30 + 3 * 40) / 6) / 2)
    assert by_n[2]["gain"] == pytest.approx((0.5 + (200 / 6 - 25)) / 2)
    assert by_n[4]["n_prompts"] == 1 and by_n[4]["expected"] == 40.0 and by_n[4]["win_rate"] == 0.875
    assert by_n[4]["expected_ci_low"] == by_n[4]["expected_ci_high"] == 40.0
    assert by_n[1]["win_rate"] == 0.5
    assert default_ns(100) == [1, 2, 4, 8, 16, 32, 64, 100] and default_ns(8) == [1, 2, 4, 8]
    assert default_ns(1) == [1]


def test_judged_curve_shows_a_proxy_that_picks_the_worst():
    rewards = [np.array([1.0, 2.0, 3.0])]
    judge = [np.array([3.0, 2.0, 1.0])]
    rows = best_of_n_curve(rewards, [1, 3], judge, n_resamples=20)
    assert rows[1]["expected"] == 1.0 and rows[1]["win_rate"] == pytest.approx(0.5 / 3)


def test_agreement_matches_scipy_and_counts_undefined_prompts():
    a = [np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([1.0, 1.0, 1.0]), np.array([3.0, 1.0, 2.0])]
    b = [np.array([2.0, 1.0, 4.0, 3.0, 5.0]), np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])]
    result = agreement(a, b, n_resamples=100)
    rho, tau = result.per_prompt["spearman"], result.per_prompt["kendall"]
    assert rho[0] == pytest.approx(stats.spearmanr(a[0], b[0]).statistic) == pytest.approx(0.8)
    assert tau[0] == pytest.approx(stats.kendalltau(a[0], b[0]).statistic) == pytest.approx(0.6)
    assert rho[2] == pytest.approx(-0.5) and np.isnan(rho[1]) and np.isnan(tau[1])
    summary = {row["metric"]: row for row in result.summary}
    assert summary["spearman"]["mean"] == pytest.approx((0.8 - 0.5) / 2)
    assert summary["spearman"]["n_undefined"] == 1 and summary["spearman"]["n_prompts"] == 2
    # Pairwise: prompt 0 has 10 pairs, 8 ordered alike; prompt 1 ties every pair under a: one half each.
    np.testing.assert_allclose(result.per_prompt["pairwise_accuracy"], [0.8, 0.5, 1 / 3])
    np.testing.assert_allclose(result.per_prompt["top1"], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="prompt 0: rewards_a has 2 responses but rewards_b has 3"):
        agreement([[1.0, 2.0]], [[1.0, 2.0, 3.0]])


def test_top1_and_pairwise_agreement_by_hand():
    assert top1_agreement([3, 1, 3], [1, 0, 1]) == 1.0  # a picks index 0, one of b's best
    assert top1_agreement([1, 3, 3], [2, 0, 2]) == 0.0  # a picks index 1 (first of its maxima)
    assert np.isnan(top1_agreement([1, 2], [5, 5]))  # b has no best
    assert pairwise_agreement([1, 2, 3], [1, 3, 2]) == (pytest.approx(2 / 3), 3)
    assert pairwise_agreement([1, 1, 2], [1, 2, 3]) == (pytest.approx(2.5 / 3), 3)  # a's tie: one half
    assert pairwise_agreement([2, 1, 3], [1, 1, 2]) == (1.0, 2)  # b's tie: not a pair to order
    assert np.isnan(pairwise_agreement([1, 2], [0, 0])[0])


def _record(responses, rewards, models=None, **extra):
    record = {"id": extra.pop("id", None), "prompt": "p", "responses": responses, "rewards": rewards}
    return record | ({"models": models} if models else {}) | extra


def test_length_driven_rewards_give_within_prompt_rho_one_while_pooled_rho_is_negative():
    # Prompt 1 gets long answers and low rewards, prompt 2 short answers and high rewards; within each,
    # the reward is the length: the within-prompt ρ is exactly 1, the pooled one says the opposite.
    long = ["word " * k for k in (20, 21, 22)]
    short = ["word " * k for k in (1, 2, 3)]
    records = [_record(long, [-10.0, -9.0, -8.0]), _record(short, [1.0, 2.0, 3.0])]
    result = length_correlation(records, n_bins=2, n_resamples=50)
    for row in result["summary"]:
        assert row["within_mean"] == 1.0 and row["within_n_prompts"] == 2 and row["within_n_undefined"] == 0
        assert row["pooled_spearman"] < -0.5
    bins = [b for b in result["bins"] if b["unit"] == "words"]
    assert [b["n"] for b in bins] == [3, 3] and [b["mean_reward"] for b in bins] == [2.0, -9.0]
    assert [b["mean_centred_reward"] for b in bins] == [0.0, 0.0]
    assert bins[0]["length_low"] == 1 and bins[1]["length_high"] == 22


def test_generator_stats_by_hand_with_a_tie_for_best():
    records = [
        _record(["a", "bb", "ccc"], [3.0, 1.0, 2.0], ["A", "B", "C"]),
        _record(["aaaa", "b"], [0.0, 5.0], ["A", "B"]),
        _record(["a", "b"], [1.0, 1.0], ["A", "B"]),
        _record(["x"], [7.0]),  # no models: left out
    ]
    rows = {row["model"]: row for row in generator_stats(records)}
    assert rows["A"]["n_responses"] == 3 and rows["A"]["n_prompts"] == 3
    assert rows["A"]["mean_reward"] == pytest.approx(4 / 3) and rows["A"]["mean_chars"] == 2.0
    assert rows["A"]["mean_percentile"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert rows["A"]["best_share"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert rows["A"]["chance_best_share"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    assert rows["B"]["best_share"] == pytest.approx(0.5) and rows["C"]["best_share"] == 0.0
    assert rows["C"]["mean_percentile"] == 0.5 and rows["C"]["n_prompts"] == 1
    with pytest.raises(ValueError, match="response_i_model"):
        generator_stats([_record(["x"], [1.0])])


def _bench(subset, chosen, rejected, **extra):
    return {
        "id": f"r-{subset}-{chosen}",
        "prompt": "q",
        "responses": ["r"],
        "rewards": [0.0],
        "subset": subset,
        "rewardbench_chosen": chosen,
        "rewardbench_rejected": rejected,
        **extra,
    }


def test_rewardbench_accuracy_per_subset_and_section_with_the_benchmarks_weights():
    records = [
        _bench("alpacaeval-easy", "long answer", "no"),  # right under a length reward
        _bench("alpacaeval-easy", "no", "long answer"),  # wrong
        _bench("mt-bench-hard", "same", "also"),  # tie: one half
        _bench("math-prm", "a proof", "x"),  # right
        _bench("hep-go", "x", "func main"),  # wrong
        _bench("brand-new", "yes!", "no"),  # right, under "other"
        _record(["r"], [0.0]),  # no pair: left out
    ]
    calls = []

    def score_fn(items):
        calls.append(list(items))
        return np.array([len(text) for _, text in items], dtype=float)

    result = rewardbench_accuracy(records, score_fn, n_resamples=50)
    assert len(calls) == 1 and len(calls[0]) == 12 and calls[0][0] == ("q", "long answer")
    subsets = {row["subset"]: row for row in result["subsets"]}
    assert subsets["alpacaeval-easy"]["accuracy"] == 0.5 and subsets["alpacaeval-easy"]["section"] == "Chat"
    assert subsets["mt-bench-hard"]["accuracy"] == 0.5 and subsets["mt-bench-hard"]["ties"] == 1
    assert subsets["brand-new"]["section"] == "other"
    sections = {row["section"]: row for row in result["sections"]}
    assert list(sections) == ["Chat", "Chat Hard", "Reasoning", "other", "all"]
    assert sections["Reasoning"]["accuracy"] == 0.5 and sections["Reasoning"]["n"] == 2
    assert sections["Reasoning"]["weighted"] == pytest.approx(984 / (984 + 164))
    assert sections["all"]["accuracy"] == pytest.approx(3.5 / 6)
    assert sections["all"]["weighted"] == pytest.approx((0.5 + 0.5 + 984 / 1148) / 3)
    assert section_of("xstest-should-respond") == "Safety" and EXAMPLE_COUNTS["hep-rust"] == 164


def test_rewardbench_fields_that_are_not_texts_are_located_errors():
    records = [_bench("donotanswer", "fine", "bad"), _bench("donotanswer", 3, 7, id="row-two")]
    with pytest.raises(DataValidationError) as error:
        rewardbench_accuracy(records, lambda items: np.zeros(len(items)), source="seed.jsonl")
    assert error.value.field == "rewardbench_chosen" and error.value.location.row == 1
    assert "seed.jsonl, record 1" in str(error.value) and "'row-two'" in str(error.value)
    assert "got int" in str(error.value)
    with pytest.raises(ValueError, match="no record carries both"):
        rewardbench_accuracy([_record(["r"], [0.0])], lambda items: np.zeros(len(items)))


def test_match_records_by_id_or_order_and_located_mismatches():
    mine = [_record(["a", "b"], [1.0, 2.0], id="x"), _record(["c", "d"], [1.0, 2.0], id="y")]
    theirs = [_record(["c", "d"], [0.0, 0.0], id="y"), _record(["a", "b"], [5.0, 6.0], id="x")]
    matched, how = match_records(mine, theirs, source="a.jsonl", other_source="b.jsonl")
    assert how == "id" and [m["rewards"] for m in matched] == [[5.0, 6.0], [0.0, 0.0]]
    unnamed = [{**t, "id": f"b.jsonl:{i}"} for i, t in enumerate(reversed(theirs))]
    assert match_records(mine, unnamed, source="a.jsonl", other_source="b.jsonl")[1] == "order"
    theirs[1] = _record(["a", "B"], [5.0, 6.0], id="x")
    with pytest.raises(DataValidationError) as error:
        match_records(mine, theirs, source="a.jsonl", other_source="b.jsonl")
    assert error.value.field == "response_2" and "b.jsonl, record 1" in str(error.value)
    with pytest.raises(DataValidationError, match="no record with id 'x'"):
        match_records(mine, theirs[:1], source="a.jsonl", other_source="b.jsonl")


def _write_wide(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _wide_rows(n_prompts=6, n=5, *, rewards=True, shift=0.0):
    rows = []
    for p in range(n_prompts):
        row = {"id": f"q{p}", "prompt": f"question {p}"}
        for i in range(1, n + 1):
            row[f"response_{i}"] = "answer " * (i + p % 3)
            row[f"response_{i}_model"] = "big" if i > 3 else "small"
            if rewards:
                row[f"reward_{i}"] = float(i + p) + shift * ((i * 7 + p) % 5)
        row["subset"] = ["alpacaeval-easy", "math-prm"][p % 2]
        row["rewardbench_chosen"], row["rewardbench_rejected"] = f"good answer {p}", f"bad {p}"
        rows.append(row)
    return rows


def _read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_cli_analyze_end_to_end_with_against_and_a_model(tmp_path, tiny_model_dirs):
    wide = _write_wide(tmp_path / "wide.jsonl", _wide_rows())
    other = _write_wide(tmp_path / "other.jsonl", list(reversed(_wide_rows(shift=3.0))))  # ids, not order
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"prompt": f"q{i}", "chosen": f"a good answer {i}", "rejected": f"no {i}"}) + "\n"
            for i in range(16)
        )
    )
    backbone = str(tiny_model_dirs["gpt2"])
    assert (
        runner.invoke(
            app, ["featurize", str(pairs), "--backbone", backbone, "--out", str(tmp_path / "f"), "--no-cache"]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        app,
        ["decompose", str(tmp_path / "f"), "--components", "2", "--out", str(tmp_path / "m"), "--no-cache"],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "analysis"
    result = runner.invoke(
        app,
        [
            "analyze",
            str(wide),
            "--against",
            str(other),
            "--model",
            str(tmp_path / "m"),
            "--ns",
            "1,2,5",
            "--resamples",
            "100",
            "--out",
            str(out),
            "--no-cache",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("best_of_n", "agreement", "length", "generators"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_prompts"] == 6 and summary["ns"] == [1, 2, 5] and summary["notes"] == []
    curve = {(r["curve"], r["n"]): r for r in _read_csv(out / "best_of_n.csv")}
    # The reward grows with the response index, so the best of all 5 is response 5, reward 5 + p.
    assert float(curve[("reward", "5")]["expected"]) == pytest.approx(np.mean([5 + p for p in range(6)]))
    assert float(curve[("reward", "1")]["win_rate"]) == 0.5
    assert float(curve[("reward", "5")]["win_rate"]) == 0.9  # (4 + ½)/5
    agree = {r["metric"]: r for r in _read_csv(out / "agreement.csv")}
    assert agree["spearman"]["n_prompts"] == "6" and -1 <= float(agree["spearman"]["mean"]) <= 1
    generators = {r["model"]: r for r in _read_csv(out / "generators.csv")}
    assert float(generators["big"]["best_share"]) == 1.0 and float(generators["small"]["best_share"]) == 0.0
    # RewardBench accuracy is the model's own reward on each pair (the one scoring path).
    from pluralrm.rewards.reward_model import RewardModel

    model = RewardModel.from_pretrained(tmp_path / "m")
    right = [
        float(
            model.rewards([(row["prompt"], row["rewardbench_chosen"])])[0]
            > model.rewards([(row["prompt"], row["rewardbench_rejected"])])[0]
        )
        for row in _wide_rows()
    ]
    sections = {r["section"]: r for r in _read_csv(out / "rewardbench_sections.csv")}
    assert float(sections["all"]["accuracy"]) == pytest.approx(np.mean(right), abs=1e-4)
    assert float(sections["Chat"]["accuracy"]) == pytest.approx(np.mean(right[0::2]), abs=1e-4)


def test_cli_analyze_skips_missing_pieces_with_notes_and_fails_clearly(tmp_path):
    rows = _wide_rows(n_prompts=3)
    for row in rows:
        for key in [k for k in row if k.endswith("_model") or k.startswith("rewardbench")]:
            del row[key]
    wide = _write_wide(tmp_path / "wide.jsonl", rows)
    result = runner.invoke(app, ["analyze", str(wide), "--out", str(tmp_path / "a"), "--resamples", "50"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert len(summary["notes"]) == 3 and summary["ns"] == [1, 2, 4, 5]
    assert not (tmp_path / "a" / "generators.csv").exists() and (tmp_path / "a" / "length_bins.csv").exists()

    bare = _write_wide(tmp_path / "bare.jsonl", _wide_rows(n_prompts=2, rewards=False))
    result = runner.invoke(app, ["analyze", str(bare), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "pluralrm rank" in result.output and "bare.jsonl" in result.output
    changed = _wide_rows(n_prompts=3)
    changed[2]["response_4"] = "something else"
    other = _write_wide(tmp_path / "other.jsonl", changed)
    result = runner.invoke(app, ["analyze", str(wide), "--against", str(other), "--out", str(tmp_path / "c")])
    assert (
        result.exit_code == 2 and "other.jsonl, record 2" in result.output and "response_4" in result.output
    )
    result = runner.invoke(app, ["analyze", str(wide), "--ns", "0,2", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and "--ns" in result.output
    assert "Example" in runner.invoke(app, ["analyze", "--help"]).output
