"""Write the DSP domain users as one pairs file each, for the command line of docs/reports/personalization.md.

The domain set's prompts are split 50/50 (seed 0, by prompt, as ``benchmarks/personalize_loo.py`` splits
them); for each domain user this writes ``<user>.jsonl`` (adaptation half), ``<user>-test.jsonl`` (test
half) and ``<user>-15.jsonl`` (the first 15 adaptation pairs), TRL-style ``prompt/chosen/rejected`` JSONL,
into ``--out`` (never into the repository). Reads ../shared/data; exits with a message where it is absent.

Usage::

    python benchmarks/dsp_user_files.py --out out/dsp-users
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pluralrm.atomic import write_jsonl
from pluralrm.backbone.pairs import prompt_group
from pluralrm.data import load_pairs
from pluralrm.data.splits import group_split

DOMAIN_SET = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "dsp"
    / "domain_specific_preference.test-dev.json.gz"
)
DOMAINS = ("academy", "business", "entertainment", "literature")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/dsp-users"))
    args = parser.parse_args()
    if not DOMAIN_SET.exists():
        sys.exit(f"skip: {DOMAIN_SET} is absent (the real data lives in ../shared/data beside the repo)")
    pairs = load_pairs(DOMAIN_SET, skip_invalid=True).records
    first, second = group_split([prompt_group(p["prompt"]) for p in pairs], [0.5, 0.5], seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    for domain in DOMAINS:
        keep = lambda part, d=domain: [  # noqa: E731
            {k: pairs[i][k] for k in ("prompt", "chosen", "rejected")}
            for i in part
            if pairs[i]["subset"] == d
        ]
        adapt, test = keep(first), keep(second)
        write_jsonl(args.out / f"{domain}.jsonl", adapt)
        write_jsonl(args.out / f"{domain}-test.jsonl", test)
        write_jsonl(args.out / f"{domain}-15.jsonl", adapt[:15])
        print(f"{domain}: {len(adapt)} adaptation pairs, {len(test)} test pairs")


if __name__ == "__main__":
    main()
