#!/usr/bin/env bash
# A fresh clone installs and runs with nothing prepared. Clones this repository's HEAD (what is
# committed) into a temporary directory and there, with no virtual environment active and no
# ETL_ setting inherited:
#   1. `bash dev/demo.sh` on a terminal with stdin closed, under a deadline: it must create
#      .venv itself, bring its pip to requirements/pip.txt, install the runtime lock and etl
#      from the clone, and exit 0 without waiting for a key (a pager would hang here), printing
#      no line wider than 100 columns;
#   2. dev/test.sh's install step (dev/venv.sh with the dev lock) into another new virtual
#      environment, which must then collect the whole test suite.
# Services the demo started are stopped at the end; services already running are used and left
# running (dev/services.sh, ETL_SERVICES_DIR and the ETL_*_PORT variables are honoured).
# Installs come from pip's cache and the compiled core's dependencies from a cargo target
# directory kept between runs ($CARGO_TARGET_DIR, else ~/.cache/etl-fresh-clone/cargo-target).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/etl-fresh-clone.XXXXXX)"
chmod 755 "$work" # PostgreSQL's tools run as the postgres user from inside the clone
clone="$work/etl"
started=()
log() { printf 'fresh-clone: %s (%ds)\n' "$*" "$SECONDS" >&2; }
finish() {
  local code=$?
  [ ${#started[@]} -eq 0 ] || bash "$root/dev/services.sh" stop "${started[@]}" || true
  rm -rf "$work"
  [ "$code" -eq 0 ] || log "FAILED (exit $code)"
}
trap finish EXIT

# No virtual environment: none active, none on PATH; only the dev scripts' own ETL_ variables.
path=()
IFS=: read -ra entries <<<"$PATH"
for dir in "${entries[@]}"; do
  [ -f "$dir/../pyvenv.cfg" ] || path+=("$dir")
done
PATH="$(IFS=:; printf '%s' "${path[*]}")"
unset VIRTUAL_ENV PYTHONPATH PYTHONHOME
for name in $(compgen -e | grep '^ETL_' || true); do
  case "$name" in
    ETL_SERVICES_DIR | ETL_PG_PORT | ETL_KAFKA_PORT | ETL_PUSHGATEWAY_PORT) ;;
    *) unset "$name" ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/etl-fresh-clone/cargo-target}"
hash -r

git clone -q "$root" "$clone"
cd "$clone"
[ ! -e .venv ] || { log "the clone already has a .venv"; exit 1; }
pip_locked="$(sed -n 's/^pip==\([^ ]*\).*/\1/p' requirements/pip.txt)"
pip_of() { "$1/bin/python" -m pip --version | cut -d' ' -f2; }
before="$(dev/services.sh running)"

log "bash dev/demo.sh"
# `script` gives the demo a terminal, as a person has: a pager would wait there for a key, and
# the deadline turns that into a failure. The output of the demo goes to demo.log.
status=0
timeout 420 script -qec "bash dev/demo.sh" "$work/demo.log" </dev/null >/dev/null || status=$?
for name in postgres kafka pushgateway; do
  grep -qx "$name" <<<"$before" || started+=("$name")
done
if [ "$status" -ne 0 ]; then
  tail -n 40 "$work/demo.log" >&2
  log "dev/demo.sh exited $status (124: it hung, e.g. in a pager)"
  exit 1
fi
[ -x .venv/bin/etl ] || { log "dev/demo.sh did not create .venv"; exit 1; }
[ "$(pip_of .venv)" = "$pip_locked" ] || { log ".venv has pip $(pip_of .venv), not $pip_locked"; exit 1; }
module="$(.venv/bin/python -c 'import etl.core._native as m; print(m.__file__)')"
[[ "$module" == "$clone/"* ]] || { log ".venv's etl is $module, not the clone's"; exit 1; }
# What a terminal shows: no colours or cursor moves, each redraw of the live view a line.
sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$work/demo.log" | tr '\r' '\n' | sed '1d;$d' >"$work/demo.txt"
wide="$(LC_ALL=C.UTF-8 grep -E '^.{101}' "$work/demo.txt" || true)"
[ -z "$wide" ] || { printf '%s\n' "$wide" >&2; log "the demo printed lines wider than 100 columns"; exit 1; }
log "demo: exit 0, .venv with pip $pip_locked, every line within 100 columns"

log "dev/venv.sh requirements/dev.txt in a new virtual environment"
ETL_VENV="$work/dev-venv" bash dev/venv.sh requirements/dev.txt
[ "$(pip_of "$work/dev-venv")" = "$pip_locked" ] || { log "dev venv: pip is not $pip_locked"; exit 1; }
"$work/dev-venv/bin/python" -m pytest --collect-only -q -p no:cacheprovider >"$work/collect.log" ||
  { tail -n 40 "$work/collect.log" >&2; log "the tests do not collect in the new environment"; exit 1; }
log "ok: $(tail -n 1 "$work/collect.log")"
