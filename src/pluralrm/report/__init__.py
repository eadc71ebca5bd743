"""``pluralrm report``: one self-contained HTML page of whatever pluralrm made — a reward model read on
pairs (data, accuracy per head, what each head means with an automatic name, users), k-shot runs,
customized models, many-responses analyses, labelling stores and collection projects.

See docs/guides/report.md. The head names come from :mod:`pluralrm.evaluate.interpret`.
"""

from pluralrm.report.model import model_section
from pluralrm.report.page import KINDS, build_sections, detect, render, write_report
from pluralrm.report.sections import Section

__all__ = ["KINDS", "Section", "build_sections", "detect", "model_section", "render", "write_report"]
