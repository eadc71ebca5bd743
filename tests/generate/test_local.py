"""The local generator: seeded sampling, greedy decoding, chat rendering and finish reasons."""

from __future__ import annotations

import pytest
import torch

from pluralrm.generate import SamplingParams, conversation
from pluralrm.generate.local import LocalGenerator, render_for_generation


@pytest.fixture(scope="module")
def generator(chat_lm_dir):
    return LocalGenerator(str(chat_lm_dir), device="cpu", dtype="float32", batch_size=8)


MESSAGES = conversation("What is the capital of France?", None)


def test_sampling_is_reproducible_from_the_seed(generator):
    params = SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=8)
    first = generator.complete(MESSAGES, params, seed=11)
    assert generator.complete(MESSAGES, params, seed=11) == first
    other = generator.complete(MESSAGES, params, seed=12)
    assert [c.text for c in other] != [c.text for c in first]
    assert len({c.text for c in first}) > 1  # N samples, not one answer repeated
    assert all(c.model == str(generator.model) for c in first)


def test_greedy_follows_the_argmax_and_ignores_the_seed(generator):
    params = SamplingParams(n=3, temperature=0.0, max_new_tokens=6)
    completions = generator.complete(MESSAGES, params, seed=1)
    assert generator.complete(MESSAGES, params, seed=99) == completions
    assert len({c.text for c in completions}) == 1 and len(completions) == 3
    # The same answer by hand: argmax of the next-token logits, step by step, stopping at an end token.
    text, _ = render_for_generation(MESSAGES, generator.tokenizer)
    ids = generator.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    new: list[int] = []
    with torch.inference_mode():
        for _ in range(6):
            token = int(
                generator.lm(torch.cat([ids, torch.tensor([new], dtype=torch.long)], dim=1))
                .logits[0, -1]
                .argmax()
            )
            if token in generator.eos_ids:
                break
            new.append(token)
    assert completions[0].text == generator.tokenizer.decode(new, skip_special_tokens=True).strip()
    assert completions[0].tokens == len(new)
    assert completions[0].finish == ("length" if len(new) == 6 else "stop")


def test_chunks_of_batch_size_give_n_responses(chat_lm_dir):
    small = LocalGenerator(str(chat_lm_dir), device="cpu", dtype="float32", batch_size=2)
    completions = small.complete(MESSAGES, SamplingParams(n=5, temperature=1.0, max_new_tokens=4), seed=3)
    assert len(completions) == 5
    assert (
        small.complete(MESSAGES, SamplingParams(n=5, temperature=1.0, max_new_tokens=4), seed=3)
        == completions
    )


def test_decode_cuts_at_the_end_token_and_marks_the_length_limit(generator):
    eos = min(generator.eos_ids)
    rows = torch.tensor([[5, 6, eos, eos], [5, 6, 7, 8], [eos, eos, eos, eos]])
    stop, cut, empty = generator._decode(rows, max_new_tokens=4)
    assert (stop.finish, stop.tokens) == ("stop", 2)
    assert (cut.finish, cut.tokens) == ("length", 4)
    assert (empty.text, empty.finish, empty.tokens) == ("", "stop", 0)
    assert stop.text == generator.tokenizer.decode([5, 6]).strip()


def test_chat_template_ends_in_the_assistant_turn_and_plain_rendering_without_one(generator, tiny_model_dirs):
    text, special = render_for_generation(conversation("Hi?", "Be brief."), generator.tokenizer)
    assert text == "<|system|>Be brief.<|end|>\n<|user|>Hi?<|end|>\n<|assistant|>" and special
    plain = LocalGenerator(str(tiny_model_dirs["gpt2"]), device="cpu", dtype="float32")
    text, special = render_for_generation(conversation("Hi?", None), plain.tokenizer)
    assert text == "User: Hi?\nAssistant:" and not special
    assert len(plain.complete(conversation("Hi?", None), SamplingParams(n=2, max_new_tokens=3), seed=0)) == 2


def test_a_prompt_with_its_own_system_message_keeps_it():
    messages = [{"role": "system", "content": "own"}, {"role": "user", "content": "q"}]
    assert conversation(messages, "default") == messages
