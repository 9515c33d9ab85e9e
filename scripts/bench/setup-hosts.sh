#!/usr/bin/env bash
# Benchmark of the setup-hosts phase on a 4-server `docker` stage (3 hives
# and a repository server, containers of hive/debian-server): the first run
# from scratch broken down by step, and the no-change re-run, beside the
# original's baseline (its setup-hosts runs about 262 Ansible tasks on such a
# stage, at about 1 s per task on this machine kind: /work/shared/bench).
# RUNS=N stage builds (1; each takes a few minutes), RERUNS=M no-change
# re-runs per build (5), PROFILE=release for an optimised build (dev by
# default: the time is spent on the servers, not in hive). Prints medians
# and the ratio to the baseline.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-setup}
runs=${RUNS:-1}
reruns=${RERUNS:-5}
baseline_tasks=262
baseline_per_task=1.0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
profile=${PROFILE:-dev}
cargo build --profile "$profile" -q -p hive-phases --tests
for _ in $(seq 1 "$runs"); do
  HSETUP_BENCH_RERUNS=$reruns cargo test --profile "$profile" -q -p hive-phases --test setup_hosts_stage -- --nocapture \
    | grep '^BENCH ' >>"$out"
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
echo "setup-hosts on 4 servers: $runs stage build(s), $reruns no-change re-runs each"
printf '%-10s %12s %12s\n' step "first (s)" "re-run (s)"
for step in base pki docker swarm registry firewall drbd logs addon total; do
  f=$(awk -v s="$step" '$2=="first" && $3==s {print $4}' "$out" | median)
  r=$(awk -v s="$step" '$2=="rerun" && $3==s {print $4}' "$out" | median)
  printf '%-10s %12s %12s\n' "$step" "$f" "$r"
done
rerun=$(awk '$2=="rerun" && $3=="total" {print $4}' "$out" | median)
base=$(awk -v n=$baseline_tasks -v t=$baseline_per_task 'BEGIN {printf "%.0f", n*t}')
echo "baseline (original, estimated no-change re-run): ${base} s ($baseline_tasks tasks x ${baseline_per_task} s)"
awk -v b="$base" -v r="$rerun" 'BEGIN {printf "re-run median %.2f s: %.0fx faster than the baseline (target: under 10 s)\n", r, b/r}'
