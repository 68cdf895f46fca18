#!/usr/bin/env bash
# Benchmark of `coupler check`: whole-process wall time and peak RSS on the standard mapping set
# and on a generated set of 2,000 mappings, against the targets. A script, not part of
# `cargo test`:
#
#   bench/check.sh            # build release, generate, measure, print PASS/MISS per target
#
# Environment: COUNT (mappings to generate, 2000), STANDARD_RUNS (20), GENERATED_RUNS (5).
# Exits 1 when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-2000}
STANDARD_RUNS=${STANDARD_RUNS:-20}
GENERATED_RUNS=${GENERATED_RUNS:-5}
# Targets.
STANDARD_MS=20
GENERATED_S=0.5
GENERATED_MB=200

# Peak RSS comes from GNU time; install it when it is missing and we may (measure.py falls back
# to a rougher figure otherwise).
if [[ ! -x /usr/bin/time ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing GNU time" >&2
    apt-get install -y -qq time >/dev/null 2>&1 || true
fi

echo "== building release" >&2
cargo build --release --quiet
BIN=target/release/coupler
OUT=target/bench/generated/mappings

echo "== generating $COUNT mappings into $OUT" >&2
read -r mappings lines files < <(python3 bench/gen_mappings.py --count "$COUNT" --out "$OUT")

# Both inputs must check with no error, or the figures mean nothing.
for set in mappings "$OUT"; do
    if ! summary=$("$BIN" check "$set" 2>&1 >/dev/null | tail -n 1) || [[ $summary != "0 errors,"* ]]; then
        echo "error: \`coupler check $set\` does not pass: $summary" >&2
        exit 2
    fi
    echo "   $set: $summary" >&2
done

echo "== measuring" >&2
read -r std_s std_kb std_cpu < <(python3 bench/measure.py "$STANDARD_RUNS" "$BIN" check mappings)
read -r gen_s gen_kb gen_cpu < <(python3 bench/measure.py "$GENERATED_RUNS" "$BIN" check "$OUT")

verdict() { # verdict VALUE LIMIT -> PASS when VALUE < LIMIT
    python3 -c "import sys; print('PASS' if float(sys.argv[1]) < float(sys.argv[2]) else 'MISS')" "$1" "$2"
}
std_ms=$(python3 -c "print(f'{$std_s * 1000:.1f}')")
std_mb=$(python3 -c "print(f'{$std_kb / 1024:.1f}')")
std_cpu_ms=$(python3 -c "print(f'{$std_cpu * 1000:.1f}')")
gen_cpu_fmt=$(python3 -c "print(f'{$gen_cpu:.2f}')")
gen_fmt=$(python3 -c "print(f'{$gen_s:.2f}')")
gen_mb=$(python3 -c "print(f'{$gen_kb / 1024:.0f}')")
v_std=$(verdict "$std_ms" "$STANDARD_MS")
v_gen_t=$(verdict "$gen_s" "$GENERATED_S")
v_gen_m=$(verdict "$((gen_kb / 1024))" "$GENERATED_MB")

printf 'standard set: %s ms (median of %d; cpu %s ms), peak %s MB   [< %d ms: %s]\n' \
    "$std_ms" "$STANDARD_RUNS" "$std_cpu_ms" "$std_mb" "$STANDARD_MS" "$v_std"
printf 'generated %d mappings / %d lines (%d files): %s s (median of %d; cpu %s s), peak %s MB   [< %s s: %s, < %d MB: %s]\n' \
    "$mappings" "$lines" "$files" "$gen_fmt" "$GENERATED_RUNS" "$gen_cpu_fmt" "$gen_mb" \
    "$GENERATED_S" "$v_gen_t" "$GENERATED_MB" "$v_gen_m"

[[ $v_std == PASS && $v_gen_t == PASS && $v_gen_m == PASS ]]
