#!/usr/bin/env bash
# HTTP benchmark (issue 5 item 5): requests per 1,000 records for a full sync embedded BC -> CAP
# Dataverse and CAP Dataverse -> CAP Business Central, the requests of a no-change run, and
# throughput under a rate limit (BC's 6,000 requests / 5 min scaled to 100 / 5 s) with the share
# of the request budget used and a check that no record is lost. Needs tests/servers/cap/node_modules
# (bash .ci/run installs it). Prints figures; asserts only "no record lost".
#   bash bench/http.sh            # 2,000 customers
#   bash bench/http.sh 5000
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2000}"
cargo bench --bench http --no-run >/dev/null 2>&1
cargo bench --bench http -- "$n" 2>/dev/null | grep -v '^$'
