#!/usr/bin/env bash
# Fuzz hive's readers of bad input for about DURATION seconds in all:
#
#   scripts/fuzz.sh DURATION
#
# Runs the property tests named fuzz_* of the crates' tests/fuzz.rs (the
# inventory loader, the template engine, the role loader, the DRBD status
# readers) one after the other, each for an equal share of DURATION, with
# fresh random inputs until its time is up (HIVE_FUZZ_SECONDS; see
# tests/fuzz/support.rs). `cargo test` runs the same targets with a few
# hundred inputs each. Prints per target the inputs tried and the failures,
# then the totals; exits 1 when an input failed (its smallest form and the
# seed that found it are printed: HIVE_FUZZ_SEED=<seed> replays the run).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-}
if ! [[ "$duration" =~ ^[0-9]+$ ]] || [ "$duration" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh DURATION (seconds, at least 1)" >&2
    exit 2
fi
crates=(hive-inventory hive-image hive-drbd)

for crate in "${crates[@]}"; do
    cargo test --quiet -p "$crate" --test fuzz --no-run
done
declare -A targets
total_targets=0
for crate in "${crates[@]}"; do
    targets[$crate]=$(cargo test --quiet -p "$crate" --test fuzz -- --list 2>/dev/null |
        sed -n 's/^\(fuzz_[a-z0-9_]*\): test$/\1/p')
    total_targets=$((total_targets + $(wc -w <<<"${targets[$crate]}")))
done
share=$((duration / total_targets))
[ "$share" -ge 1 ] || share=1
echo "fuzzing $total_targets targets for ${share} s each"

log=$(mktemp)
results=$(mktemp)
trap 'rm -f "$log" "$results"' EXIT
status=0
for crate in "${crates[@]}"; do
    for target in ${targets[$crate]}; do
        if ! HIVE_FUZZ_SECONDS=$share cargo test --quiet -p "$crate" --test fuzz -- \
            --exact "$target" --test-threads=1 --nocapture >"$log" 2>&1; then
            status=1
            cat "$log"
        fi
        grep '^fuzz: ' "$log" | tee -a "$results" || echo "fuzz: $crate $target: no report"
    done
done
sed -n 's/.*: \([0-9]*\) inputs, \([0-9]*\) failures.*/\1 \2/p' "$results" |
    awk '{ inputs += $1; failures += $2 }
        END { printf "fuzz: total: %d inputs, %d failures\n", inputs, failures }'
exit "$status"
