"""Records, loaders for every supported format, validation, and the built-in synthetic data."""

from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.data.loaders import (
    DSP_BASELINE,
    DSP_DOMAINS,
    LoadReport,
    LoadResult,
    detect_format,
    load_pairs,
    load_ranked,
)

__all__ = [
    "DSP_BASELINE",
    "DSP_DOMAINS",
    "DataValidationError",
    "LoadReport",
    "LoadResult",
    "RecordLocation",
    "detect_format",
    "load_pairs",
    "load_ranked",
]
