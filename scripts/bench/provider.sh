#!/usr/bin/env bash
# Benchmark of hive-provider: bring-up of a 4-server `docker` stage with the
# base image cached, and one command on all four servers over warm SSH
# sessions, each beside a baseline run in the same process (plain docker
# CLI + ssh-keyscan; OpenSSH with and without ControlMaster). Prints medians
# and ratios. RUNS=N sets the number of bring-ups (5).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-provider}
cargo build --release -q -p hive-provider --example provider_bench
exec "$CARGO_TARGET_DIR/release/examples/provider_bench"
