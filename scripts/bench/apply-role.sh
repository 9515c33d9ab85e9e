#!/usr/bin/env bash
# Side-by-side benchmark of role application (what build-images does):
# hive's native runner against ansible-playbook with the docker connection,
# both applying the same 22-task role (crates/hive-image/tests/roles/bench_role,
# a copy of the shared baseline's role-22-tasks) to fresh containers of the
# same image on the same engine. Prints medians of first runs and no-change
# re-runs, and the ratios.
#
#   RUNS=5 scripts/bench/apply-role.sh
#
# Needs the Docker engine and hive-test/debian:bookworm (scripts/images/);
# creates a Python venv with ansible and the docker SDK (BENCH_VENV) and an
# image with python3 added (Ansible's side needs it; hive's does not).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-5}
venv=${BENCH_VENV:-/work/target-image/bench-venv}
target_dir=${CARGO_TARGET_DIR:-/work/target-image}
image=himage-bench/debian-python3:bookworm
roles=$PWD/crates/hive-image/tests/roles
work=$(mktemp -d)
trap 'rm -rf "$work"; docker rm -f himage-bench-c >/dev/null 2>&1 || true' EXIT

if [ ! -x "$venv/bin/ansible-playbook" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ansible docker
fi
if ! docker image inspect "$image" >/dev/null 2>&1; then
  docker rm -f himage-bench-py >/dev/null 2>&1 || true
  docker run -d --name himage-bench-py hive-test/debian:bookworm sleep 900 >/dev/null
  docker exec himage-bench-py sh -c 'apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends python3 >/dev/null'
  docker commit himage-bench-py "$image" >/dev/null
  docker rm -f himage-bench-py >/dev/null
fi
CARGO_TARGET_DIR=$target_dir cargo build -q --release -p hive-image --example apply_role
hive=$target_dir/release/examples/apply_role

cat >"$work/apply-role.yml" <<'YML'
- name: build image
  hosts: images
  gather_facts: false
  connection: community.docker.docker
  tasks:
    - name: apply role
      ansible.builtin.include_role:
        name: "{{ hive_safe_role }}"
      loop: [bench_role]
      loop_control:
        loop_var: hive_safe_role
YML
echo "[images]" >"$work/inventory"
echo "himage-bench-c" >>"$work/inventory"

fresh() {
  docker rm -f himage-bench-c >/dev/null 2>&1 || true
  docker run -d --name himage-bench-c "$image" sleep 3600 >/dev/null
}
now() { date +%s.%N; }
timed() { local s e; s=$(now); "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }; e=$(now); echo "$e - $s" | bc -l; }
run_ansible() {
  ANSIBLE_ROLES_PATH=$roles ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_STDOUT_CALLBACK=default \
    "$venv/bin/ansible-playbook" -i "$work/inventory" "$work/apply-role.yml"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

: >"$work/hive1"; : >"$work/hive2"; : >"$work/ans1"; : >"$work/ans2"
for i in $(seq "$runs"); do
  fresh
  timed "$hive" himage-bench-c "$roles" bench_role >>"$work/hive1"; first=$(cat "$work/out")
  timed "$hive" himage-bench-c "$roles" bench_role >>"$work/hive2"; second=$(cat "$work/out")
  echo "run $i hive: first [$first] re-run [$second]"
  fresh
  timed run_ansible >>"$work/ans1"; a1=$(grep -o 'changed=[0-9]*' "$work/out" | head -1)
  timed run_ansible >>"$work/ans2"; a2=$(grep -o 'changed=[0-9]*' "$work/out" | head -1)
  echo "run $i ansible: first $a1 $(tail -1 "$work/ans1")s, re-run $a2 $(tail -1 "$work/ans2")s"
done
h1=$(median <"$work/hive1"); h2=$(median <"$work/hive2")
a1=$(median <"$work/ans1"); a2=$(median <"$work/ans2")
printf '\nmedian of %s runs (wall clock, s)   hive      ansible   ansible/hive\n' "$runs"
printf 'first run (fresh container)        %-9.3f %-9.2f %.0fx\n' "$h1" "$a1" "$(echo "$a1 / $h1" | bc -l)"
printf 'no-change re-run                   %-9.3f %-9.2f %.0fx\n' "$h2" "$a2" "$(echo "$a2 / $h2" | bc -l)"
