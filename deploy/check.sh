#!/usr/bin/env bash
# Checks of deploy/: the Prometheus alert rules (promtool) and the Helm chart (lint, render,
# strict decoding into the Kubernetes API types, and the rendered config through the server's
# own `check --offline`). Run by .ci/run; also by hand from anywhere. Fails on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- promtool -----------------------------------------------------------------------------
# Debian's prometheus package ships promtool (bookworm: Prometheus 2.42.0). Only its binary is
# taken, out of the package into a cache folder: installing the package would also set up a
# Prometheus server to start, which CI must not leave running.
PROMETHEUS_DEB=2.42.0+ds-5+deb12u1
find_promtool() {
  if command -v promtool >/dev/null; then command -v promtool; return; fi
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/panther-scim/prometheus-deb"
  local version
  for version in "$PROMETHEUS_DEB" ""; do
    if [ -z "$version" ]; then
      # The pinned Debian revision was superseded (a security update): take the candidate,
      # still Prometheus 2.42.0.
      version=$(apt-cache policy prometheus | sed -n 's/^ *Candidate: //p')
      case "$version" in 2.42.0+*) ;; *) echo "promtool: Debian offers prometheus '$version', not 2.42.0" >&2; return 1 ;; esac
    fi
    if [ -x "$dir/$version/usr/bin/promtool" ]; then echo "$dir/$version/usr/bin/promtool"; return; fi
    local tmp; tmp=$(mktemp -d)
    chmod 755 "$tmp"
    if (cd "$tmp" && { apt-get download -q "prometheus=$version" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get download -q "prometheus=$version" >/dev/null 2>&1; }; }); then
      mkdir -p "$dir/$version"
      dpkg-deb -x "$tmp"/prometheus_*.deb "$dir/$version"
      rm -rf "$tmp"
      echo "$dir/$version/usr/bin/promtool"
      return
    fi
    rm -rf "$tmp"
  done
  echo "promtool: could not get Debian's prometheus package" >&2
  return 1
}
promtool=$(find_promtool)
echo "== promtool ($("$promtool" --version 2>&1 | head -1)): check and unit-test deploy/prometheus/alerts.yaml"
"$promtool" check rules deploy/prometheus/alerts.yaml
"$promtool" test rules deploy/prometheus/alerts_test.yaml

# ---- the Helm chart ---------------------------------------------------------------------
echo "== Helm chart: lint, render, strict decoding (deploy/helm/chartcheck, a module of its own)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd deploy/helm/chartcheck && go mod tidy -diff && go vet ./... && CHARTCHECK_OUT="$out" go test -count=1 ./...)
echo "== panther-scim check --offline on each rendered config"
go build -o "$out/panther-scim" ./cmd/panther-scim
n=0
for dir in "$out"/*/; do
  [ -f "$dir/config.yaml" ] || continue
  printf '%s: ' "$(basename "$dir")"
  env -i PATH="$PATH" $(cat "$dir/env") "$out/panther-scim" check --offline --config "$dir/config.yaml"
  n=$((n + 1))
done
[ "$n" -ge 4 ] || { echo "only $n rendered configs checked"; exit 1; }
