"""The ``pluralrm`` command line: each verb parses, calls one library function, and formats the result.

Verbs live in small modules by what they work on; importing them registers them on the one Typer ``app``.
"""

from pluralrm.cli import (
    analyze,  # noqa: F401  (importing a module registers its verbs)
    collect,  # noqa: F401
    core,  # noqa: F401
    customize,  # noqa: F401
    finetune,  # noqa: F401
    generate,  # noqa: F401
    label,  # noqa: F401
    personal,  # noqa: F401
    population,  # noqa: F401
    report,  # noqa: F401
    select,  # noqa: F401
    serving,  # noqa: F401
)
from pluralrm.cli.common import app

__all__ = ["app"]
