#!/usr/bin/env bash
# Regenerate the lock files in requirements/ from pyproject.toml and requirements/*.in, with the
# hashes of every distribution of each pinned version (all platforms, Python 3.11+):
#   runtime.txt       the package's dependencies: the container image installs exactly these
#   dev.txt           runtime + the test extra (pytest, ruff, mypy, ...): dev/test.sh and CI
#   deploy-check.txt  the manifest and Containerfile checkers of dev/check-deploy.sh
# Run it after changing a dependency; commit the result. `--upgrade` moves every pin forward.
set -euo pipefail
cd "$(dirname "$0")/.."
uv_version=0.13.8
if [ "$(uv --version 2>/dev/null | cut -d' ' -f2)" != "$uv_version" ]; then
  python3 -m pip install -q --disable-pip-version-check "uv==$uv_version"
fi
compile() { uv pip compile -q --python-version 3.11 --universal --generate-hashes "$@"; }
compile "$@" pyproject.toml -o requirements/runtime.txt
compile "$@" --extra test pyproject.toml -o requirements/dev.txt
# the same versions as dev.txt where they share a package: both go into one environment
compile "$@" -c requirements/dev.txt requirements/deploy-check.in -o requirements/deploy-check.txt
