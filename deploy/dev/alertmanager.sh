#!/usr/bin/env bash
# The real Prometheus Alertmanager binary, built from source with the
# machine's Go at a pinned version and cached, for the end-to-end tests.
#
#   deploy/dev/alertmanager.sh build   # build once (no-op when cached), print the path
#   deploy/dev/alertmanager.sh path    # print the binary's path (built or not)
#
#   ALERTMANAGER_BIN=$(deploy/dev/alertmanager.sh path) go test -run Alertmanager ./internal/app/
#
# Environment:
#   ALERTMANAGER_VERSION  module version to build (default v0.31.1)
#   TRIAGE_DEV_DIR        cache root (default $HOME/.cache/triage-dev)
#   GO                    go command to use (default: go on PATH)
#
# The build runs `go install module@version` from an empty temporary
# directory, so it never reads or changes this repository's go.mod; modules
# come from the machine's usual GOPROXY / module cache.
set -euo pipefail

AM_VERSION="${ALERTMANAGER_VERSION:-v0.31.1}"
[[ "$AM_VERSION" == v* ]] || AM_VERSION="v$AM_VERSION"
AM_PKG="github.com/prometheus/alertmanager/cmd/alertmanager"
DIR="${TRIAGE_DEV_DIR:-$HOME/.cache/triage-dev}/alertmanager-$AM_VERSION"
BIN="$DIR/alertmanager"
GO="${GO:-go}"

log() { echo "alertmanager.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $0 {build|path}
  build   build Alertmanager $AM_VERSION into $DIR (skipped when already there and working)
  path    print the binary's path: $BIN
EOF
  exit 2
}

# works: the cached binary exists and runs.
works() { [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; }

build() {
  if works; then
    log "Alertmanager $AM_VERSION already built: $BIN"
    echo "$BIN"
    return 0
  fi
  command -v "$GO" >/dev/null || die "'$GO' not found: Go is needed to build Alertmanager $AM_VERSION"
  mkdir -p "$DIR"
  local tmp; tmp="$(mktemp -d "${TMPDIR:-/tmp}/triage-alertmanager-build.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: tmp is local
  trap "rm -rf '$tmp'" EXIT
  # Stamp the version that `alertmanager --version` prints (go install sets none).
  local vpkg="github.com/prometheus/common/version"
  local ldflags="-X $vpkg.Version=${AM_VERSION#v} -X $vpkg.Branch=HEAD -X $vpkg.Revision=$AM_VERSION -X $vpkg.BuildUser=triage-dev"
  log "building $AM_PKG@$AM_VERSION into $DIR (first run only, about a minute)..."
  local start=$SECONDS
  # GOFLAGS=-mod=mod: a module-mode install must not pick up -mod=vendor etc.
  # from the caller; GOWORK=off: never use a go.work above the temp dir.
  if ! (cd "$tmp" && GOBIN="$DIR" GOWORK=off GOFLAGS=-mod=mod GO111MODULE=on \
        "$GO" install -trimpath -ldflags "$ldflags" "$AM_PKG@$AM_VERSION" >"$tmp/build.log" 2>&1); then
    sed 's/^/  | /' "$tmp/build.log" >&2
    rmdir "$DIR" 2>/dev/null || true
    die "building Alertmanager $AM_VERSION failed (output above). Check that Go ($("$GO" env GOVERSION 2>/dev/null || echo unknown)) can build it and that modules can be fetched (GOPROXY=$("$GO" env GOPROXY 2>/dev/null || echo unknown)), or pick another version with ALERTMANAGER_VERSION."
  fi
  works || die "built $BIN but '$BIN --version' does not run"
  log "built Alertmanager $AM_VERSION in $((SECONDS - start)) s: $BIN"
  echo "$BIN"
}

case "${1:-}" in
  build) build ;;
  path) echo "$BIN" ;;
  *) usage ;;
esac
