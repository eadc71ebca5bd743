"""Every real file in ../shared/data loads with the expected counts (skipped where absent)."""

import pytest

from pluralrm.data import load_pairs, load_ranked
from tests.conftest import shared_file

# (file, records read, pairs loaded, invalid skipped, ties skipped, identical pairs skipped) — measured,
# see docs/reference/data.md. In the domain set 100 of 8,096 domain pairs have the same text on both sides.
EXPECTED = [
    ("hh-rlhf-harmless/test-dev.jsonl.gz", 1784, 1779, 5, 0, 0),
    ("dsp/helpful.test-dev.json.gz", 1803, 1793, 10, 0, 0),
    ("dsp/harmless.test-dev.json.gz", 1784, 1779, 5, 0, 0),
    ("dsp/webgpt.test-dev.json.gz", 692, 501, 0, 191, 0),
    ("dsp/domain_specific_preference.test-dev.json.gz", 507, 506 * 16 - 100, 1, 0, 100),
]


@pytest.mark.parametrize(("relative", "read", "loaded", "skipped", "ties", "identical"), EXPECTED)
def test_real_file_counts(relative, read, loaded, skipped, ties, identical):
    result = load_pairs(shared_file(relative), skip_invalid=True)
    report = result.report
    counts = (report.n_read, report.n_loaded, report.n_skipped, report.n_ties, report.n_identical)
    assert counts == (read, loaded, skipped, ties, identical)


def test_hh_and_dsp_harmless_hold_the_same_pairs():
    hh = load_pairs(shared_file("hh-rlhf-harmless/test-dev.jsonl.gz"), skip_invalid=True).records
    dsp = load_pairs(shared_file("dsp/harmless.test-dev.json.gz"), skip_invalid=True).records
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in hh] == [
        (p["prompt"], p["chosen"], p["rejected"]) for p in dsp
    ]


def test_strict_loading_stops_at_the_first_bad_record():
    from pluralrm.data import DataValidationError

    with pytest.raises(DataValidationError, match="line 65, field 'chosen': empty text"):
        load_pairs(shared_file("hh-rlhf-harmless/test-dev.jsonl.gz"))


def test_domain_ranked_records():
    ranked = load_ranked(shared_file("dsp/domain_specific_preference.test-dev.json.gz"), skip_invalid=True)
    assert len(ranked) == 506 and all(len(r["responses"]) == 5 for r in ranked)
