#!/usr/bin/env bash
# hnviz in someone else's environment: a fresh virtual environment gets another torch
# first (e.g. a CUDA build of a newer version), then the wheel of this checkout's HEAD with
# its dev extra. Checks that pip keeps that torch (same version, files untouched), then
# runs the README's quick start from another folder and the fast tests against the
# installed wheel (a clone of HEAD, the dev and bench extras: hypnettorch for the tests
# that compare against it). Several GB of disk for a CUDA torch; minutes.
#
#   bash scripts/check_torch_range.sh 'torch==2.14.1' [WORK_DIR]
set -euo pipefail
spec=${1:?usage: bash scripts/check_torch_range.sh TORCH_SPEC [WORK_DIR]}
work=${2:-$(mktemp -d)}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work/elsewhere"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
echo "== $spec into $work/venv"
"$py" -m pip install -q "$spec" 2> "$work/torch.log"
stamp='import os, torch; print(torch.__version__, os.stat(torch.__file__).st_mtime_ns)'
before=$("$py" -c "$stamp" 2>/dev/null)
echo "torch before: $before"
git clone -q "$repo" "$work/src"
"$py" -m pip wheel -q --no-deps -w "$work/dist" "$work/src" 2> "$work/wheel.log"
"$py" -m pip install "$(ls "$work"/dist/hnviz-*.whl)[dev,bench]" > "$work/install.log" 2>&1
grep -E "^(Requirement already satisfied: torch[>=]|Successfully installed)" "$work/install.log" |
    cut -c1-300 || true
after=$("$py" -c "$stamp" 2>/dev/null)
echo "torch after:  $after"
if [ "$before" != "$after" ]; then echo "FAIL: pip replaced torch"; exit 1; fi
cd "$work/elsewhere"
sed -n '/^## Quick start/,/^## Notebooks/p' "$repo/README.md" |
    awk '/^```python/{on=1; next} /^```/{on=0} on' > quick_start.py
MPLBACKEND=Agg "$py" quick_start.py
echo "quick start: ok (runs/toy written: $(test -f runs/toy/run.json && echo yes))"
cd "$work/src"  # the tests of HEAD, importing the installed wheel (not the checkout)
HNVIZ_FAST=1 "$work/venv/bin/pytest" tests -m "not slow" -n 2 --dist loadfile -q \
    -p no:cacheprovider 2>&1 | tail -5
