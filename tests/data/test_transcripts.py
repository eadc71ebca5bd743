import pytest
from hypothesis import given
from hypothesis import strategies as st

from pluralrm.data.transcripts import (
    TranscriptError,
    parse_transcript,
    render_transcript,
    split_shared_prompt,
)

# Contents that cannot contain a turn marker: no blank line followed by a speaker name.
contents = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n#"), max_size=40
)
messages = st.lists(
    st.tuples(st.sampled_from(["user", "assistant"]), contents).map(
        lambda t: {"role": t[0], "content": t[1]}
    ),
    min_size=1,
    max_size=6,
)


@given(messages, st.sampled_from(["hh", "webgpt"]))
def test_render_then_parse_round_trips(msgs, style):
    if style == "webgpt":
        msgs = [{"role": m["role"], "content": m["content"].lstrip("\n")} for m in msgs]
    assert parse_transcript(render_transcript(msgs, style)) == msgs


def test_parse_hh_multi_turn():
    text = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Joke?\n\nAssistant: No."
    assert [m["role"] for m in parse_transcript(text)] == ["user", "assistant", "user", "assistant"]
    assert parse_transcript(text)[2]["content"] == "Joke?"


def test_parse_webgpt_style():
    text = "## Human:\nWhy is the sky blue?\n\n## Assistant:\nRayleigh scattering [1]."
    assert parse_transcript(text) == [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "Rayleigh scattering [1]."},
    ]


def test_text_before_first_turn_is_an_error():
    with pytest.raises(TranscriptError, match="before the first"):
        parse_transcript("preamble\n\nHuman: hi\n\nAssistant: yo")


@given(messages, contents, contents)
def test_split_shared_prompt_recovers_final_replies(prefix, reply_a, reply_b):
    prompt = [*prefix, {"role": "user", "content": "q"}]
    chosen = [*prompt, {"role": "assistant", "content": reply_a}]
    rejected = [*prompt, {"role": "assistant", "content": reply_b}]
    assert split_shared_prompt(chosen, rejected) == (prompt, reply_a, reply_b)


def test_split_rejects_dialogues_that_differ_earlier():
    a = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "1"}]
    b = [{"role": "user", "content": "y"}, {"role": "assistant", "content": "2"}]
    with pytest.raises(TranscriptError, match="differ before the final reply"):
        split_shared_prompt(a, b)
