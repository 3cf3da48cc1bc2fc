#!/usr/bin/env bash
# Dependencies point inward (ARCHITECTURE.md): pure crates never depend on IO stacks,
# only tollgate-store speaks SQL, only server/gateway/binary speak HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
forbid() { # crate, forbidden dependency...
  local crate=$1; shift
  local tree
  tree=$(cargo tree --locked -p "$crate" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u)
  for dep in "$@"; do
    if grep -qx "$dep" <<<"$tree"; then
      echo "dependency rule broken: $crate depends on $dep" >&2
      fail=1
    fi
  done
}

io="tokio hyper axum sqlx tower tollgate-store tollgate-server tollgate-gateway"
forbid tollgate-core $io tollgate-keyring tollgate-openapi tollgate-manifest
forbid tollgate-keyring $io
forbid tollgate-openapi $io
forbid tollgate-manifest $io
forbid tollgate-terms $io
forbid tollgate-policy $io tollgate-terms
forbid tollgate-limits $io
forbid tollgate-httpsig $io
forbid tollgate-oauth $io
forbid tollgate-ledger $io
forbid tollgate-billing $io tollgate-store
forbid tollgate-store hyper axum tower tollgate-server tollgate-gateway
forbid tollgate-gateway sqlx axum tollgate-store tollgate-server
if [ "$fail" -ne 0 ]; then exit 1; fi
echo "dependency direction: ok"
