"""Automatic head names from text: the attributes are measured as written, a head that tracks one is
named after it (with the right sign), and without one the distinctive words name it."""

import numpy as np
import pytest

from pluralrm.data.synthetic import make_synthetic_preferences
from pluralrm.evaluate.interpret import (
    ATTRIBUTES,
    distinctive_words,
    head_meanings,
    name_from,
    pair_attribute_differences,
    text_attributes,
)


def _value(text: str, name: str) -> float:
    names, values = text_attributes([text])
    return float(values[0, names.index(name)])


def test_each_attribute_reads_what_it_says():
    assert _value("I'm sorry, but I can't help with that.", "refusal") == 1.0
    assert _value("Here is how to do it.", "refusal") == 0.0
    assert _value("# Steps\n- one\n- two\n1. three", "lists_markdown") == 4.0
    assert _value("Why? And how? Really?", "questions") == 3.0
    assert _value("Please, thank you, certainly.", "politeness") == 3.0
    assert (
        _value("It is advisable to ensure this.", "formality")
        > 0
        > _value("Yeah, you gotta do it!", "formality")
    )
    assert _value("Run `pip install x` then:\n```\nimport x\n```", "code") == 1.0
    assert _value("It costs 3.50 for 12 items in 2024.", "numbers") == 3.0
    assert _value("I understand, and your feelings are valid.", "empathy") == 3.0  # three phrases
    assert _value("Fun fact: this joke is funny.", "humour") == 3.0
    assert _value("one two three", "length") == pytest.approx(np.log1p(3))


def test_pair_differences_are_chosen_minus_rejected():
    diff = pair_attribute_differences(["a b c d e f g"], ["a"])
    assert diff.shape == (1, len(ATTRIBUTES))
    assert diff[0, ATTRIBUTES.index("length")] == pytest.approx(np.log1p(7) - np.log1p(1))


def test_distinctive_words_each_way():
    preferred = ["the cat sat", "a cat ran", "cat food"] * 2
    other = ["the dog sat", "a dog ran", "dog food"] * 2
    more, less = distinctive_words(preferred, other)
    assert more[0] == "cat" and less[0] == "dog"
    assert "food" not in more + less  # on both sides alike


def test_the_name_follows_the_strongest_attributes_and_their_signs():
    corr = dict.fromkeys(ATTRIBUTES, 0.0) | {"length": 0.7, "lists_markdown": 0.5, "refusal": -0.1}
    assert name_from(corr, ["x"], min_correlation=0.3) == "longer, more structured"
    corr = dict.fromkeys(ATTRIBUTES, 0.0) | {"refusal": 0.6, "length": -0.2}
    assert name_from(corr, [], min_correlation=0.3) == "refuses"
    corr = dict.fromkeys(ATTRIBUTES, 0.0) | {"formality": -0.5, "humour": 0.2}
    assert name_from(corr, [], min_correlation=0.3) == "more casual"
    weak = dict.fromkeys(ATTRIBUTES, 0.1)
    assert name_from(weak, ["cat", "fur"], min_correlation=0.3) == "prefers 'cat', 'fur'"
    assert name_from(weak, [], min_correlation=0.3) == "unclear"


def test_heads_whose_margins_are_known_attribute_gaps_are_named_after_them():
    """Margins built from the synthetic data's known attribute differences (plus noise): the names, read
    from the texts alone, recover each attribute and its sign."""
    data = make_synthetic_preferences(n_prompts=24, pairs_per_prompt=2, seed=1)
    names = list(data.attribute_names)
    known = np.array([np.subtract(p["chosen_attributes"], p["rejected_attributes"]) for p in data.pairs])
    rng = np.random.default_rng(0)
    columns = {"refusal": 1.0, "length": 1.0, "list_structure": 1.0, "formality": -1.0, "empathy": 1.0}
    margins = np.stack([s * known[:, names.index(a)] for a, s in columns.items()], axis=1)
    margins += 0.1 * rng.standard_normal(margins.shape)
    meanings = head_meanings(
        margins, [p["chosen"] for p in data.pairs], [p["rejected"] for p in data.pairs], list(columns)
    )
    got = {m.head: m.name.split(", ")[0] for m in meanings}
    assert got == {
        "refusal": "refuses",
        "length": "longer",
        "list_structure": "more structured",
        "formality": "more casual",
        "empathy": "more empathetic",
    }, {m.head: m.name for m in meanings}
    top = meanings[0]
    assert all(margins[i, 0] >= margins[j, 0] for i, j in zip(top.top, top.top[1:], strict=False))
    assert margins[top.bottom[0], 0] == margins[:, 0].min()


def test_bad_margin_shapes_are_refused():
    with pytest.raises(ValueError, match="margins must have shape"):
        head_meanings(np.zeros((3, 2)), ["a", "b"], ["c", "d"], ["pc1", "pc2"])
