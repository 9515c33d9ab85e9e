#!/usr/bin/env bash
# Side-by-side benchmark of deploy-services on this machine's Docker engine
# (single-node swarm): 50 services deployed from scratch, re-run with no
# change, re-run with one environment value changed.
#
#   original: Ansible's community.docker.docker_swarm_service in a loop
#             (/work/shared/bench/deploy-50-services.yml), from PyPI in its
#             own virtualenv (created here when missing);
#   hive:     hive-swarm's Deployer (crates/hive-swarm/examples/bench_deploy.rs,
#             release build), same services, 10 parallel API calls.
#
# Usage: scripts/bench/deploy-services.sh [ROUNDS]   (default 3)
# Env:   VENV (default /work/venv-bench), PLAYBOOK, CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
venv=${VENV:-/work/venv-bench}
playbook=${PLAYBOOK:-/work/shared/bench/deploy-50-services.yml}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-swarm}
image=local/busybox:1   # the image the playbook names
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

[ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ] ||
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null

if [ ! -x "$venv/bin/ansible-playbook" ]; then
  echo "bench: creating $venv (ansible, docker from PyPI)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ansible docker
fi

tagged_image=0
if ! docker image inspect "$image" >/dev/null 2>&1; then
  docker tag hive-test/busybox:1 "$image"
  tagged_image=1
fi
cleanup_image() { [ "$tagged_image" = 1 ] && docker image rm "$image" >/dev/null 2>&1 || true; rm -rf "$results"; }
trap cleanup_image EXIT

echo "bench: building the hive side (release)" >&2
cargo build -q --release -p hive-swarm --example bench_deploy

now() { date +%s.%N; }
wait_running() { # all services with the prefix at 1/1
  local prefix=$1
  while docker service ls --format '{{.Name}} {{.Replicas}}' | grep "^$prefix" | grep -qv ' 1/1'; do sleep 0.5; done
}
wait_gone() {
  local prefix=$1
  while docker ps -a --filter "label=com.docker.swarm.service.name" --format '{{.Label "com.docker.swarm.service.name"}}' | grep -q "^$prefix"; do sleep 0.5; done
}
ansible_run() {
  ANSIBLE_STDOUT_CALLBACK=null ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
    "$venv/bin/ansible-playbook" "$playbook" "$@" >"$results/ansible.log" 2>&1 ||
    { cat "$results/ansible.log" >&2; exit 1; }
}

for round in $(seq 1 "$rounds"); do
  echo "bench: round $round/$rounds: ansible" >&2
  t0=$(now); ansible_run; t1=$(now)
  wait_running bsvc
  t2=$(now); ansible_run; t3=$(now)
  t4=$(now); ansible_run -e changed_service=bsvc07 -e rev="$round"; t5=$(now)
  docker service rm $(docker service ls -q --filter name=bsvc) >/dev/null
  wait_gone bsvc
  echo "{\"round\": $round, \"first\": $(awk "BEGIN{print $t1 - $t0}"), \"same\": $(awk "BEGIN{print $t3 - $t2}"), \"change\": $(awk "BEGIN{print $t5 - $t4}")}" >>"$results/ansible.jsonl"

  echo "bench: round $round/$rounds: hive" >&2
  "$CARGO_TARGET_DIR/release/examples/bench_deploy" 1 "$image" >>"$results/hive.jsonl"
done

python3 - "$results" <<'PY'
import json, statistics, sys
d = sys.argv[1]
load = lambda f: [json.loads(l) for l in open(f"{d}/{f}") if l.strip()]
a, h = load("ansible.jsonl"), load("hive.jsonl")
med = lambda rows, k: statistics.median(r[k] for r in rows)
print(f"deploy-services, 50 services, {len(a)} rounds, medians in seconds (min-max)")
print(f"{'run':<28}{'ansible':>22}{'hive':>22}{'ratio':>10}")
rng = lambda rows, k: f"{med(rows, k):.3f} ({min(r[k] for r in rows):.3f}-{max(r[k] for r in rows):.3f})"
for key, label in [("first", "first deploy (API work)"), ("same", "no-change re-run"), ("change", "one env value changed")]:
    ratio = med(a, key) / med(h, key)
    print(f"{label:<28}{rng(a, key):>22}{rng(h, key):>22}{ratio:>9.0f}x")
print(f"hive: all 50 tasks running {med(h, 'converge'):.1f} s after the start of the first deploy;"
      f" the changed service's rolling update completed after {med(h, 'change_converge'):.1f} s;"
      f" -D removed the 50 services in {med(h, 'remove'):.3f} s")
PY
