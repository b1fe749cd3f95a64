#!/usr/bin/env bash
# Build the image from the Containerfile with buildah and check what came out:
#   etl --version runs as the image's user 10001, the entrypoint is etl, no compiler is left.
# Usage: dev/build-image.sh [TAG]   (default localhost/etl:dev)
#
# buildah is installed with apt when missing. Where the runtime cannot create namespaces (inside
# an unprivileged container), RUN steps use chroot isolation. When the base image (PYTHON_IMAGE,
# default: the Containerfile's) cannot be pulled, as on a machine that reaches only package
# registries, the script bootstraps a stand-in from Debian's packages (Debian 13 minbase with
# python3-venv, tagged localhost/etl-base:trixie, kept for the next build) and builds on it.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-localhost/etl:dev}"
base="${PYTHON_IMAGE:-$(sed -n 's/^ARG PYTHON_IMAGE=//p' Containerfile)}"
standin=localhost/etl-base:trixie

log() { printf 'build-image: %s\n' "$*" >&2; }

if ! command -v buildah >/dev/null; then
  log "apt-get install buildah"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
fi

if ! buildah inspect --type image "$base" >/dev/null 2>&1 &&
  ! timeout 120 buildah pull -q "$base" >/dev/null 2>&1; then
  if ! buildah inspect --type image "$standin" >/dev/null 2>&1; then
    log "$base cannot be pulled; bootstrapping $standin from Debian packages"
    command -v debootstrap >/dev/null ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    root="$(mktemp -d)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates trixie \
      "$root" http://deb.debian.org/debian >"$root.log" 2>&1 || { cat "$root.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    ctr="$(buildah from scratch)"
    buildah add -q "$ctr" "$root" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --cmd python3 "$ctr"
    buildah commit -q --rm "$ctr" "$standin" >/dev/null
    rm -rf "$root" "$root.log"
  fi
  base="$standin"
fi

isolation=oci
ctr="$(buildah from "$base")"
buildah run "$ctr" true >/dev/null 2>&1 || isolation=chroot
buildah rm "$ctr" >/dev/null
# A host that reaches PyPI through a TLS proxy names its CA bundle in PIP_CERT: the RUN steps
# get it mounted read-only (nothing of it is committed into the image).
mounts=()
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  conf="$(mktemp)"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$conf"
  mounts=(--volume "$PIP_CERT:/etc/ssl/certs/ca-certificates.crt:ro" --volume "$conf:/etc/pip.conf:ro")
fi
log "building $tag on $base (isolation $isolation)"
# docker format: OCI image configs have no HEALTHCHECK
buildah build -q --format docker --isolation "$isolation" --layers "${mounts[@]}" --build-arg "PYTHON_IMAGE=$base" \
  -f Containerfile -t "$tag" . >/dev/null

user="$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")"
entrypoint="$(buildah inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$tag")"
[ "$user" = "10001:10001" ] || { log "image user is '$user', not 10001:10001"; exit 1; }
[ "$entrypoint" = '[etl]' ] || { log "entrypoint is $entrypoint, not etl"; exit 1; }
ctr="$(buildah from "$tag")"
trap 'buildah rm "$ctr" >/dev/null' EXIT
version="$(buildah run --isolation "$isolation" --user 10001:10001 "$ctr" etl --version)"
buildah run --isolation "$isolation" "$ctr" sh -c \
  'for c in gcc cc cargo rustc pip; do if command -v $c; then exit 1; fi; done' ||
  { log "the final image holds a compiler or pip"; exit 1; }
size="$(buildah images --format '{{.Size}}' "$tag" | head -1)"
log "ok: $tag ($version, user $user, $size)"
