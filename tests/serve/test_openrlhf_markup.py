"""OpenRLHF's templated prompts read back into messages, for every chat markup the server knows."""

from __future__ import annotations

import jinja2
import pytest

from pluralrm.backbone.formatting import plain_chat_template
from pluralrm.data.transcripts import render_transcript
from pluralrm.serve.openrlhf import conversation_of, openrlhf_texts, parse_chat_markup, strip_end_markers
from tests.conftest import CHAT_TEMPLATE

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Plan a trip.\nTwo days."},
    {"role": "assistant", "content": "Where to?"},
    {"role": "user", "content": "Lisbon."},
]
# Generation-prompt renderings as the models' own templates write them.
TEMPLATES = {
    "chatml": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "<|im_start|>assistant\n",
    "llama3": "<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
    "{{ m.content }}<|eot_id|>{% endfor %}<|start_header_id|>assistant<|end_header_id|>\n\n",
    "phi3": "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}<|assistant|>\n",
    "pluralrm-plain": plain_chat_template(),
    "tests' tiny llama (no generation prompt)": CHAT_TEMPLATE,
}


def render(template: str, **kwargs) -> str:
    """As transformers renders chat templates (the trailing newline kept)."""
    env = jinja2.Environment(keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(**kwargs)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_a_templated_prompt_reads_back_as_its_messages(name):
    prompt = render(TEMPLATES[name], messages=CONVERSATION, add_generation_prompt=True)
    assert parse_chat_markup(prompt) == CONVERSATION


def test_gemma_and_hh_prompts():
    gemma = "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
    gemma += "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    assert parse_chat_markup(gemma) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    hh = render_transcript(CONVERSATION[1:]) + "\n\nAssistant:"
    assert parse_chat_markup(hh) == CONVERSATION[1:]


@pytest.mark.parametrize("prompt", ["How do I bake bread?", "User: hi", "<|im_start|>user\nHi", ""])
def test_text_that_is_not_a_whole_markup_is_not_read_as_one(prompt):
    assert parse_chat_markup(prompt) is None


def test_the_response_is_what_follows_the_prompt_without_end_markers():
    prompt = render(TEMPLATES["chatml"], messages=CONVERSATION)
    assert conversation_of(prompt + "Alfama, then Belém.<|im_end|>\n", prompt) == (
        CONVERSATION,
        "Alfama, then Belém.",
    )
    assert conversation_of("How do I bake bread? Knead it.</s>", "How do I bake bread?") == (
        "How do I bake bread?",
        "Knead it.",
    )
    assert conversation_of("something else", prompt) is None and conversation_of(prompt + "x", None) is None
    assert strip_end_markers("Done.<|eot_id|><|end_of_text|>") == "Done."
    texts, rendered = openrlhf_texts(lambda p, r: f"[{r}]", ["Q? A.", "raw"], ["Q?", 7])
    assert (texts, rendered) == (["[A.]", "raw"], [1.0, 0.0])
