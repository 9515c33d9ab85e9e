#!/usr/bin/env bash
# Run every test of hive: formatting, lints, docs, unit and integration tests
# (including those against a real Docker engine, sshd and drbdadm), and the
# role runner's conformance with ansible-core's integration targets.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-machine.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
cargo test --workspace
# the role runner against ansible-core's own integration targets (bounded:
# about two minutes once the image and ansible-core's sources are cached)
./scripts/ansible-conformance.sh
