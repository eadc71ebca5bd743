"""Stop a transformer's forward pass after the deepest block whose output is needed.

Middle layers carry preference best for SmolLM2 (docs/reports/results.md); stopping there saves the rest of
the stack — half the time for layer 15 of 30. Forward hooks read each block's output (what
``hidden_states[i]`` holds for a middle layer) and the last one stops the pass, so the model itself is
never modified. Hooks are registered on the shared model, so each one acts only in the thread that
registered it: another thread's forward pass through the same model runs to the end untouched.
"""

from __future__ import annotations

import threading


class _StopForward(Exception):
    """Raised by a forward hook once the deepest requested layer has run."""


def decoder_blocks(model):
    """The ModuleList of transformer blocks (Llama ``layers``, GPT-2 ``h``, BERT ``encoder.layer``)."""
    import torch

    for path in ("layers", "h", "encoder.layer"):
        module = model
        for name in path.split("."):
            module = getattr(module, name, None)
        if isinstance(module, torch.nn.ModuleList):
            return module
    return None


def run_until(model, blocks, depth: int, input_ids, attention_mask) -> dict:
    """Hidden states after blocks 1..depth (by block index), stopping the pass after block ``depth``."""
    captured: dict[int, object] = {}
    owner = threading.get_ident()

    def hook(index: int):
        def read(module, args, output):
            if threading.get_ident() != owner:
                return None
            captured[index] = output[0] if isinstance(output, tuple) else output
            if index == depth:
                raise _StopForward

        return read

    handles = [block.register_forward_hook(hook(i + 1)) for i, block in enumerate(blocks[:depth])]
    try:
        model(input_ids=input_ids, attention_mask=attention_mask)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return captured
