"""N responses per prompt from a local causal LM or an OpenAI-compatible endpoint, as wide records.

``generate(prompts_file, out)`` is the one call; its output is resumable and reads back with
:func:`pluralrm.data.load_ranked`. torch and httpx are imported only by the generator that needs them.
"""

from pluralrm.generate.prompts import PromptRecord, load_prompts
from pluralrm.generate.resume import ResumeMismatchError, manifest_path, read_done
from pluralrm.generate.run import (
    GenerationProgress,
    GenerationSummary,
    generate,
    make_generator,
    write_generations,
)
from pluralrm.generate.sampling import Completion, Generator, SamplingParams, conversation, prompt_seed

__all__ = [
    "Completion",
    "GenerationProgress",
    "GenerationSummary",
    "Generator",
    "PromptRecord",
    "ResumeMismatchError",
    "SamplingParams",
    "conversation",
    "generate",
    "load_prompts",
    "make_generator",
    "manifest_path",
    "prompt_seed",
    "read_done",
    "write_generations",
]
