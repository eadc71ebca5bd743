"""Everything pluralrm trains: customized reward models (:mod:`pluralrm.training.customize`), policy SFT on
selected responses (:mod:`pluralrm.training.policy`), and the run plumbing both share
(:mod:`pluralrm.training.runs`: non-finite-loss stop, same-run resume, whole-directory replace, versions).

Torch, transformers, TRL and peft live here and in :mod:`pluralrm.backbone` only, and load inside functions:
importing this package costs nothing.
"""
