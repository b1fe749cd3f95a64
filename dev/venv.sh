# Sourced by dev/demo.sh and dev/test.sh: make or reuse the project's virtual environment
# (.venv, or $ETL_VENV), bring its pip to the locked version, install the given lock file with
# hashes checked and the package itself on top, then put the environment first on PATH.
# Whether or not another virtual environment is active, this one is used.
# Usage: . dev/venv.sh requirements/dev.txt
etl_venv="${ETL_VENV:-$PWD/.venv}"
if [ ! -x "$etl_venv/bin/python" ]; then
  printf 'venv: creating %s\n' "$etl_venv" >&2
  python3 -m venv "$etl_venv" || {
    printf 'venv: python3 -m venv failed; on Debian: apt-get install python3-venv\n' >&2
    exit 1
  }
fi
etl_pip=("$etl_venv/bin/python" -m pip install -q --disable-pip-version-check)
"${etl_pip[@]}" --require-hashes -r requirements/pip.txt
"${etl_pip[@]}" --require-hashes -r "$1"
"${etl_pip[@]}" --no-deps -e .
export VIRTUAL_ENV="$etl_venv"
export PATH="$etl_venv/bin:$PATH"
unset PYTHONHOME
hash -r
