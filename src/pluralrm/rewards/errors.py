"""Errors of reading reward models, shared by both directory kinds (frozen-feature heads, fine-tuned)."""


class RewardModelLoadError(ValueError):
    """A reward model directory that cannot be read; the message names the file and what is wrong."""
