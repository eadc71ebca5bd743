"""pluralrm: learn the diversity of human preferences as decomposed, personalizable reward models."""

__version__ = "0.1.0"
