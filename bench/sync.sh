#!/usr/bin/env bash
# Synchronization benchmark (issue 4): full sync of N customers embedded -> embedded against a
# raw SQLite copy of the same rows; peak memory at 100k vs 1M; an incremental run with 10
# changed records among 1k and among 100k. Prints figures; asserts nothing.
#   bash bench/sync.sh            # 1k, 100k, 1M
#   bash bench/sync.sh 20000      # one size
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 100000 1000000)
cargo bench --bench sync --no-run >/dev/null 2>&1
for n in "${sizes[@]}"; do
    echo "== $n customers"
    cargo bench --bench sync -- "$n" 2>/dev/null | grep -v '^$'
done
