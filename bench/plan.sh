#!/usr/bin/env bash
# Plan compilation on a large mapping set: `coupler plan` and `coupler check` on 2,000 generated
# mappings (bench/gen_plan.py: copies of the standard set's mappings, ~25 lines each, with `via`
# lookups and `after` edges to random earlier mappings, checked against the real schemas).
#
# Prints the median wall time of RUNS runs and the peak RSS (largest of the runs) of
#   coupler check GENERATED                       (parse + check)
#   coupler plan  GENERATED --format json         (parse + check + compile + render)
# so that plan minus check is what compiling and rendering the plan costs.
#
# usage: bench/plan.sh [COUNT=2000] [SEED=1] [RUNS=5]
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${1:-2000}
SEED=${2:-1}
RUNS=${3:-5}

if [ ! -x /usr/bin/time ]; then
    echo "== installing GNU time" >&2
    apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

echo "== building release" >&2
cargo build --release --quiet
BIN=target/release/coupler

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
GEN="$WORK/generated.map"
python3 bench/gen_plan.py "$COUNT" "$SEED" "$GEN" >&2

# The set must check clean, or the figures would measure error reporting.
if ! "$BIN" check "$GEN" >"$WORK/check.out" 2>&1; then
    cat "$WORK/check.out" >&2
    echo "error: the generated set does not check clean" >&2
    exit 1
fi
"$BIN" plan "$GEN" --format json >"$WORK/plan.json"
python3 - "$WORK/plan.json" <<'EOF' >&2
import json, sys
plan = json.load(open(sys.argv[1]))
edges = sum(len(m["depends_on"]) for m in plan["mappings"])
print(f"plan: {len(plan['mappings'])} mappings, {len(plan['stages'])} stages, "
      f"{edges} dependency edges, {len(plan['patches'])} deferred patches")
EOF

# measure LABEL CMD...: RUNS runs; prints "LABEL  median wall  peak RSS".
measure() {
    local label=$1
    shift
    local times=() peak=0
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || {
            cat "$WORK/stderr" >&2
            echo "error: $label failed" >&2
            exit 1
        }
        read -r wall rss <"$WORK/time"
        times+=("$wall")
        [ "$rss" -gt "$peak" ] && peak=$rss
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '%-34s median %6.2f s of %d runs (%s)   peak RSS %7.1f MiB\n' \
        "$label" "$median" "$RUNS" "$(IFS=' '; echo "${times[*]}")" "$(awk -v k="$peak" 'BEGIN { print k / 1024 }')"
}

echo "== $COUNT mappings, $(wc -l <"$GEN") lines, $(du -h "$GEN" | cut -f1)"
measure "coupler check" "$BIN" check "$GEN"
measure "coupler plan --format json" "$BIN" plan "$GEN" --format json
measure "coupler plan --format text" "$BIN" plan "$GEN" --format text
