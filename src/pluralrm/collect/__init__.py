"""Preference-data collection in four incremental stages (Hu et al. 2024, arXiv 2406.16486).

Prompts → responses → filtering (AI drops noise and decides easy pairs) → human labelling, each stage a
dataset on disk with per-record provenance and a manifest, so any stage can be re-run or resumed alone.
"""
