"""Human labelling of preference pairs: the store (SQLite), who labels what next, agreement, the web app.

The fourth collection stage (:mod:`pluralrm.collect`) ends here: pairs are imported into a
:class:`LabelStore`, people label them on the page of :func:`create_label_app` (or, mounted on the reward
server, :func:`~pluralrm.label.app.mount_labelling`), and :func:`write_export` writes the decisive
majority labels as TRL pairs.
Importing this package is cheap: FastAPI and Jinja2 load with :mod:`pluralrm.label.app` only.
"""

from pluralrm.label.agreement import ai_agreement, cohen_kappa, majority, pairwise_kappa, time_per_label
from pluralrm.label.io import export_rows, read_pairs, write_export
from pluralrm.label.store import Label, LabelError, Labeller, LabelStore, PairToLabel

__all__ = [
    "Label",
    "LabelError",
    "LabelStore",
    "Labeller",
    "PairToLabel",
    "ai_agreement",
    "cohen_kappa",
    "export_rows",
    "majority",
    "pairwise_kappa",
    "read_pairs",
    "time_per_label",
    "write_export",
]
