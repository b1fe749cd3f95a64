#!/usr/bin/env bash
# The offline tests against the oldest dependency versions pyproject.toml accepts
# (requirements/minimum.txt as pip constraints), in a virtualenv of their own. CI runs it after
# dev/test.sh; a lower bound that stopped working fails here. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${ETL_MINIMUM_VENV:-/tmp/etl-venv-minimum}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
# jsonschema: tests/unit/test_deploy_clowder.py, tests/unit/test_clowder.py; testcontainers:
# tests/unit/test_fixtures.py imports the Docker fallback's modules.
"${pip[@]}" -c requirements/minimum.txt -e . "pytest==9.2.0" "pyyaml==6.0.4" \
  "jsonschema==4.26.0" "testcontainers==4.15.0"
"$venv/bin/python" - <<'PY'
# Refuse to pass on newer versions than the constraints name (pip keeps what satisfies them).
import pathlib, sys
from importlib.metadata import version
for line in pathlib.Path("requirements/minimum.txt").read_text().splitlines():
    if line and not line.startswith("#"):
        name, wanted = line.split("==")
        if version(name) != wanted:
            sys.exit(f"{name} {version(name)} installed, minimum is {wanted}")
PY
# Every test that needs no service: pure modules, the CLI, the run loop with fakes, deploy/.
"$venv/bin/python" -m pytest -p no:cacheprovider -m "not integration" "$@"
