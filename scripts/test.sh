#!/usr/bin/env bash
# Run every test of hive: formatting, lints, docs, unit and integration tests
# (including those against a real Docker engine, sshd and drbdadm), the role
# runner's conformance with ansible-core's integration targets, then the
# README's main command exactly as written (scripts/quickstart.sh), whose
# site is checked and removed again.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-machine.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# every crate ready for crates.io: metadata, README as crate docs, package contents
./scripts/check-packages.sh
cargo test --workspace
# hive-swarm embedded on its own (its README's example)
./scripts/test-swarm-example.sh
# the role runner against ansible-core's own integration targets (bounded:
# about two minutes once the image and ansible-core's sources are cached)
./scripts/ansible-conformance.sh
./scripts/test-quickstart.sh
