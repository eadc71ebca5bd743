"""Preference-data collection in four incremental stages (Hu et al. 2024, arXiv 2406.16486).

Prompts → responses → filtering (AI drops noise and decides easy pairs) → human labelling, each stage a
dataset on disk with per-record provenance and a manifest, so any stage can be re-run or resumed alone.
Importing this package is cheap: torch and the web app load only when used.
"""

from pluralrm.collect.filters import LMJudge, RewardJudge
from pluralrm.collect.pipeline import StageOrderError, run_filter, run_prompts, run_responses, stage_table
from pluralrm.collect.provenance import StageManifest, provenance, read_manifest
from pluralrm.collect.responses_stage import GeneratorSetting, settings_grid

__all__ = [
    "GeneratorSetting",
    "LMJudge",
    "RewardJudge",
    "StageManifest",
    "StageOrderError",
    "provenance",
    "read_manifest",
    "run_filter",
    "run_prompts",
    "run_responses",
    "settings_grid",
    "stage_table",
]
