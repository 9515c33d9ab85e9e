#!/usr/bin/env bash
# Whole-process timing of `hive inventory` (start, load, validate, print) on
# the pdns example and on a generated project with 1,000 services and 100
# hosts per stage. Uses hyperfine when installed, else a `date +%s%N` loop.
# Usage: crates/hive-inventory/benches/process.sh [path/to/hive]
set -euo pipefail
here=$(cd "$(dirname "$0")/../../.." && pwd)
hive=${1:-}
if [ -z "$hive" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-inventory}
  cargo build --release -p hive-cli >&2
  hive=$CARGO_TARGET_DIR/release/hive
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -r "$here/tests/fixtures/inventory/pdns" "$work/pdns"

large=$work/large/inventory
mkdir -p "$large/group_vars"
{
  echo "plugin: hive_inventory"
  echo "name: large.example"
  echo "stages:"
  n=10
  for stage in private staging production; do
    printf '  %s:\n    provider: prepared\n    number_of_hosts: 100\n    cidr: 10.%d.0.0/16\n' "$stage" "$n"
    n=$((n + 1))
  done
} > "$large/hive.yml"
{
  echo "plugin: hive_services"
  echo "services:"
  for i in $(seq 0 999); do
    printf '  svc%d:\n    image: registry.example/app%d:1.0\n    replicas: 2\n    environment:\n      DB: "{{ db_password }}"\n    ports:\n    - "%d"\n' "$i" "$i" $((8000 + i))
    if [ "$i" -lt 200 ]; then
      printf '    volumes:\n    - {source: data%d, target: /data, type: volume, drbd: {size: 1G, fstype: xfs}}\n' "$i"
    fi
  done
} > "$large/services.yml"
printf 'db_password: secret\n' > "$large/group_vars/all.yml"

# first run allocates and writes .hive/persistents.yml; timed runs reuse it
"$hive" -r "$work/pdns" inventory > /dev/null
"$hive" -r "$work/large" inventory > /dev/null

if command -v hyperfine > /dev/null; then
  hyperfine -N --warmup 3 --runs 50 --export-json "${HYPERFINE_JSON:-/dev/null}" \
    "$hive -r $work/pdns inventory" \
    "$hive -r $work/large inventory"
else
  for name in pdns large; do
    times=()
    for _ in $(seq 1 30); do
      start=$(date +%s%N)
      "$hive" -r "$work/$name" inventory > /dev/null
      end=$(date +%s%N)
      times+=($(((end - start) / 1000)))
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 15p)
    echo "$name: median ${median} us over 30 runs"
  done
fi
