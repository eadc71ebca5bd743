"""Summarize a finished `mutmut run` over rewards/ and adapt/: kill rate per file, and each survivor's diff.

Run from the directory where `mutmut run` ran (its ``mutants/`` folder holds the results); mutmut itself is
not a project dependency (``pip install mutmut==3.8.1``; its settings are ``[tool.mutmut]`` in
pyproject.toml). Survivors whose only change is the text of a human-readable message (an exception,
warning or log text: ``"XX…XX"`` or a case change inside the quotes) are counted as *message-only*; they
are reported apart from the rest, which need a test or a reason (docs/reports/mutation.md).

Usage::

    mutmut run --max-children 2
    python benchmarks/mutation_survivors.py --out mutation.json      # prints the table
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

MESSAGE_CONTEXT = re.compile(r"raise |Error\(|logger\.|warnings\.warn|help=|f\"|f'|print\(|description=")
STRING = re.compile(r"""(?P<q>["'])(?:\\.|(?!(?P=q)).)*(?P=q)""")


def mutmut(*args: str) -> str:
    executable = shutil.which("mutmut")
    if executable is None:
        raise SystemExit("mutmut is not installed: pip install mutmut==3.8.1")
    return subprocess.run([executable, *args], capture_output=True, text=True, check=True).stdout


def statuses() -> dict[str, str]:
    out = {}
    for line in mutmut("results", "--all", "true").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            out[name] = status
    return out


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    removed = [x[1:] for x in diff.splitlines() if x.startswith("-") and not x.startswith("---")]
    added = [x[1:] for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")]
    return removed, added


def is_message_only(diff: str) -> bool:
    """The mutation changed only string contents, on a line that builds a message for people."""
    removed, added = changed_lines(diff)
    if len(removed) != len(added) or not removed:
        return False
    for old, new in zip(removed, added, strict=True):
        if STRING.sub('""', old) != STRING.sub('""', new):
            return False  # code outside the strings changed
        if not MESSAGE_CONTEXT.search(old):
            return False
    return True


def source_file(name: str) -> str:
    module = name.split(".x_")[0].split(".xǁ")[0]
    return module.replace(".", "/") + ".py"


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument(
        "--out", type=Path, help="Write each survivor (name, status, kind, diff) as JSON here."
    )
    args = parser.parse_args()

    found = statuses()
    by_file: dict[str, Counter] = defaultdict(Counter)
    survivors = []
    for name, status in sorted(found.items()):
        kind = status
        if status in ("survived", "no tests"):
            diff = mutmut("show", name)
            kind = "message-only" if is_message_only(diff) else status
            survivors.append({"name": name, "status": status, "kind": kind, "diff": diff})
        by_file[source_file(name)][kind] += 1

    def row(label: str, counts: Counter) -> str:
        total = sum(counts.values())
        killed = counts["killed"] + counts["timeout"]
        message = counts["message-only"]
        rate = killed / total if total else 0.0
        meaningful = killed / (total - message) if total > message else 0.0
        return (
            f"| {label} | {total} | {killed} | {counts['survived']} | {counts['no tests']} | {message} | "
            f"{rate:.1%} | {meaningful:.1%} |"
        )

    print("| file | mutants | killed | survived | no tests | message-only | killed/all | killed/other |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for file, counts in sorted(by_file.items()):
        print(row(file, counts))
    print(row("**all**", sum(by_file.values(), Counter())))
    other = Counter(s for s in found.values() if s not in ("killed", "timeout", "survived", "no tests"))
    if other:
        print(f"other statuses: {dict(other)}")
    if args.out:
        args.out.write_text(json.dumps(survivors, indent=1, ensure_ascii=False))
        print(f"wrote {len(survivors)} survivors to {args.out}")


if __name__ == "__main__":
    main()
