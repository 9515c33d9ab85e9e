#!/usr/bin/env bash
# Inject each fault family of crates/hive-cli/tests/faults.rs N times per
# case on one docker-provider site and print the figures:
#
#   scripts/faults.sh N [FAMILY...]
#
# FAMILY filters the tests by name (e.g. `kill_all`); all by default.
# FAULTS_SEED=<seed> replays the random moments of an earlier run (each
# family prints its seed). Prints per family the injections, how many ended
# with a complete and correct site after the next plain `hive all`, and how
# many needed a hand (each one is described in the log, kept when any did);
# exits 1 when any needed a hand. `cargo test` runs the same families once
# per case.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-}
if ! [[ "$rounds" =~ ^[0-9]+$ ]] || [ "$rounds" -lt 1 ]; then
    echo "usage: scripts/faults.sh N [FAMILY...] (N injections per case, at least 1)" >&2
    exit 2
fi
shift

cargo test --quiet -p hive-cli --test faults --no-run
log=$(mktemp --suffix=.faults.log)
status=0
FAULTS_ROUNDS=$rounds cargo test --quiet -p hive-cli --test faults -- \
    --test-threads=1 --nocapture "$@" >"$log" 2>&1 || status=$?

printf '%-30s %10s %10s %14s %8s\n' family injections recovered "needed a hand" seconds
total_i=0 total_r=0 total_h=0
while read -r line; do
    family=$(sed -n 's/^fault-figures: \(.*\) injections=.*/\1/p' <<<"$line")
    i=$(sed -n 's/.* injections=\([0-9]*\).*/\1/p' <<<"$line")
    r=$(sed -n 's/.* recovered=\([0-9]*\).*/\1/p' <<<"$line")
    h=$(sed -n 's/.* hand=\([0-9]*\).*/\1/p' <<<"$line")
    s=$(sed -n 's/.* seconds=\([0-9]*\).*/\1/p' <<<"$line")
    printf '%-30s %10s %10s %14s %8s\n' "$family" "$i" "$r" "$h" "$s"
    total_i=$((total_i + i)) total_r=$((total_r + r)) total_h=$((total_h + h))
done < <(grep '^fault-figures: ' "$log" || true)
printf '%-30s %10s %10s %14s\n' total "$total_i" "$total_r" "$total_h"
echo "seed: $(grep -o 'FAULTS_SEED=[0-9]*' "$log" | sort -u | tr '\n' ' ')"

if [ "$status" -ne 0 ] || [ "$total_h" -ne 0 ]; then
    echo "some injections needed a hand or a test failed; the log: $log" >&2
    grep -E 'NEEDED A HAND|panicked' "$log" | sed 's/^/  /' >&2 || true
    exit 1
fi
rm -f "$log"
