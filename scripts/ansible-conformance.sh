#!/usr/bin/env bash
# Conformance of hive's role runner with Ansible: ansible-core's own
# integration targets for the modules hive implements natively, each applied
# to a fresh container by hive's Runner (and, with --ansible, by ansible-core
# 2.18 on the same image), counting the `assert` executions passed and failed.
#
#   scripts/ansible-conformance.sh             hive only, compared with
#                                              tests/ansible-conformance/baseline.tsv
#   scripts/ansible-conformance.sh --ansible   both sides; rewrites the
#                                              baseline's ansible column
#   TARGETS="copy file" scripts/ansible-conformance.sh   some targets only
#   KEEP_LOGS=DIR, KEEP_ROLES=DIR: keep each side's log, the prepared roles
#
# ansible-core's source distribution (GPL) is downloaded from PyPI into
# CONFORMANCE_CACHE (default /var/tmp/hive-conformance), never copied into
# the repository. Only the targets' setup dependencies are replaced, by the
# stand-ins written below; the tasks are run as shipped. Facts are not
# gathered on either side: both get the same host variables (facts.json).
# Fails when hive passes fewer asserts of a target than the baseline's
# `hive` column (the bar); tests/ansible-conformance/README.md lists the
# asserts neither side can pass here, and why.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cache=${CONFORMANCE_CACHE:-/var/tmp/hive-conformance}
version=${ANSIBLE_CORE_VERSION:-2.18.19}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
image=${CONFORMANCE_IMAGE:-hive-conformance/debian:bookworm-2}
baseline=$repo/tests/ansible-conformance/baseline.tsv
module_targets="lineinfile blockinfile replace copy file template stat command_shell tempfile"
# keyword targets: roles as shipped, and plays of playbooks made roles by
# tests/ansible-conformance/play_to_role.py (NAME=PLAYBOOK:PLAY_INDEX)
keyword_roles="var_inheritance loops lookup_items lookup_together lookup_sequence lookup_dict lookup_indexed_items lookup_nested lookup_subelements include_import_tasks_nested"
keyword_plays="conditionals=conditionals/play.yml:0
blocks=blocks/main.yml:0
blocks_include=blocks/main.yml:1
include_tasks=include_import/tasks/test_include_tasks.yml:0
import_tasks=include_import/tasks/test_import_tasks.yml:0
handlers_listen=handlers/test_listening_handlers.yml:0
loop_control_extended=loop_control/extended.yml:0"
targets=${TARGETS:-"$module_targets $keyword_roles $(echo "$keyword_plays" | cut -d= -f1 | tr '\n' ' ')"}
with_ansible=0
[ "${1:-}" = --ansible ] && with_ansible=1
work=$(mktemp -d)
container=hive-conformance-$$
trap 'rm -rf "$work"; docker rm -f "$container" >/dev/null 2>&1 || true' EXIT

mkdir -p "$cache"
sdist=$cache/ansible_core-$version.tar.gz
if [ ! -f "$sdist" ]; then
  python3 -m pip download -q --no-deps --no-binary :all: "ansible-core==$version" -d "$cache"
fi
src=$cache/ansible_core-$version
[ -d "$src" ] || tar -xzf "$sdist" -C "$cache"

if ! docker image inspect "$image" >/dev/null 2>&1; then
  docker rm -f "$container" >/dev/null 2>&1 || true
  docker run -d --name "$container" hive-test/debian:bookworm sleep 900 >/dev/null
  # what ansible-core's test containers have: Python for Ansible's side,
  # file (stat's mimetype), acl (setfacl), sudo's local directory, root's
  # authorized_keys
  docker exec "$container" sh -c 'apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends python3 file acl >/dev/null && rm -rf /var/lib/apt/lists/*
    mkdir -p /usr/local/etc/sudoers.d /root/.ssh && echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHive conformance" >/root/.ssh/authorized_keys'
  docker commit "$container" "$image" >/dev/null
  docker rm -f "$container" >/dev/null
fi

# PyYAML for tests/ansible-conformance/play_to_role.py
py=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  [ -x "$cache/pyyaml/bin/python3" ] || { python3 -m venv "$cache/pyyaml" && "$cache/pyyaml/bin/pip" install -q pyyaml; }
  py=$cache/pyyaml/bin/python3
fi

# the targets, as shipped, and stand-ins for their setup roles
roles=$work/roles
mkdir -p "$roles"
tsrc=$src/test/integration/targets
for t in $targets; do
  spec=$(echo "$keyword_plays" | sed -n "s/^$t=//p")
  if [ -z "$spec" ]; then
    cp -a "$tsrc/$t" "$roles/$t"
    continue
  fi
  "$py" "$repo/tests/ansible-conformance/play_to_role.py" "$tsrc/${spec%%:*}" "${spec##*:}" "$roles/$t"
  # the roles the playbook's target ships, where the play found them
  tdir=$tsrc/${spec%%/*}
  for r in "$tdir"/roles/*; do
    [ -d "$r" ] && [ ! -e "$roles/$(basename "$r")" ] && cp -a "$r" "$roles/"
  done
done
standin() { mkdir -p "$roles/$1/tasks"; cat >"$roles/$1/tasks/main.yml"; }
standin prepare_tests <<'YML'
- name: output directory
  command: mktemp -d /tmp/output.XXXXXX
  register: hive_output_dir
- set_fact:
    output_dir: "{{ hive_output_dir.stdout }}"
YML
# world-writable as /tmp: the copy target switches to an unprivileged
# remote_user that creates its test directory in it
standin setup_remote_tmp_dir <<'YML'
- name: temporary directory
  shell: d=$(mktemp -d /tmp/ansible.XXXXXX.test) && chmod 1777 "$d" && echo "$d"
  register: hive_remote_tmp_dir
- set_fact:
    remote_tmp_dir: "{{ hive_remote_tmp_dir.stdout }}"
YML
standin setup_nobody <<'YML'
- name: the nobody user exists on Debian
  command: id nobody
  changed_when: false
YML
cat >"$work/facts.json" <<'JSON'
{"ansible_system": "Linux", "ansible_os_family": "Debian", "ansible_distribution": "Debian", "ansible_fips": false,
 "ansible_user_id": "root", "ansible_python_interpreter": "/usr/bin/python3",
 "ansible_python": {"executable": "/usr/bin/python3", "version": {"major": 3, "minor": 11}},
 "ansible_facts": {"system": "Linux", "os_family": "Debian", "distribution": "Debian"}}
JSON

# "passed failed tasks" from a side's log
counts() {
  grep -o 'asserts passed=[0-9]* failed=[0-9]* tasks=[0-9]*' "$1" | tail -1 |
    sed 's/asserts passed=\([0-9]*\) failed=\([0-9]*\) tasks=\([0-9]*\)/\1 \2 \3/' || echo "0 0 0"
}

# the host variables and extra variables of a target: facts.json and what
# the target's own inventory and command line give (var_precedence)
target_vars() {
  local hostvars='{}' extra='{}'
  case "$1" in
    var_precedence)
      hostvars='{"extra_var_override": "FROM_INVENTORY", "inven_var": "inventory_var", "defaults_file_var_role3": "overridden from inventory"}'
      extra='{"extra_var": "extra_var", "extra_var_override": "extra_var_override"}' ;;
  esac
  python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); v.update(json.loads(sys.argv[2])); print(json.dumps(v))' \
    "$work/facts.json" "$hostvars" >"$work/vars-$1.json"
  echo "$extra" >"$work/extra-$1.json"
}

fresh() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  docker run -d --name "$container" "$image" sleep 3600 >/dev/null
}

run_ansible() { # target → "passed failed tasks"
  local venv=$cache/venv
  if [ ! -x "$venv/bin/ansible-playbook" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'ansible==11.*' docker
  fi
  mkdir -p "$work/inv/host_vars" "$work/callback"
  printf 'testhost ansible_connection=community.docker.docker ansible_host=%s\n' "$container" >"$work/inv/hosts"
  cp "$work/vars-$1.json" "$work/inv/host_vars/testhost.yml"
  cat >"$work/callback/hive_asserts.py" <<'PY'
from ansible.plugins.callback import CallbackBase
INCLUDES = ('include_tasks', 'import_tasks', 'include_role', 'import_role')
class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'hive_asserts'
    def __init__(self):
        super().__init__()
        self.ok = self.failed = self.tasks = 0
    def _count(self, result):
        action = result._task.action.split('.')[-1]
        if action not in INCLUDES and action != 'meta':
            self.tasks += 1
        return action == 'assert'
    def v2_runner_on_ok(self, result):
        if self._count(result):
            self.ok += 1
    def v2_runner_on_skipped(self, result):
        self._count(result)
    def v2_runner_on_failed(self, result, ignore_errors=False):
        if self._count(result):
            self.failed += 1
            print('failed-assert %s' % result._task.get_name())
    def v2_playbook_on_stats(self, stats):
        print('asserts passed=%d failed=%d tasks=%d' % (self.ok, self.failed, self.tasks))
PY
  printf -- '- hosts: testhost\n  gather_facts: false\n  roles:\n    - %s\n' "$1" >"$work/play.yml"
  ANSIBLE_ROLES_PATH=$roles ANSIBLE_CALLBACK_PLUGINS=$work/callback ANSIBLE_CALLBACKS_ENABLED=hive_asserts \
    ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1 \
    "$venv/bin/ansible-playbook" -i "$work/inv/hosts" -e "@$work/extra-$1.json" "$work/play.yml" >"$work/ansible-$1.log" 2>&1 || true
  counts "$work/ansible-$1.log"
}

CARGO_TARGET_DIR=$target_dir cargo build -q -p hive-image --example conformance
hive=$target_dir/debug/examples/conformance

# static count of assert tasks in the target's files (executions may differ:
# loops and files included twice)
count_asserts() {
  grep -rEc '^\s*(- )?\s*(ansible\.builtin\.)?assert:' "$roles/$1/tasks" | awk -F: '{s+=$2} END {print s+0}'
}

# both sides run from the scratch directory: tasks delegated to localhost
# create relative paths there
cd "$work"
status=0
printf '%-22s %6s %8s %6s %7s %8s %8s\n' target hive ansible bar failed not-run written >"$work/table"
declare -A bar ans atasks hive
if [ -f "$baseline" ]; then
  while read -r t a at h; do
    case "$t" in \#* | target | "") continue ;; esac
    ans[$t]=$a; atasks[$t]=$at; bar[$t]=$h
  done <"$baseline"
fi
for t in $targets; do
  target_vars "$t"
  fresh
  "$hive" "$container" "$roles" "$t" "$work/vars-$t.json" "$work/extra-$t.json" >"$work/hive-$t.log" 2>&1 || true
  read -r hp hf ht < <(counts "$work/hive-$t.log")
  hp=${hp:-0}; hf=${hf:-0}; ht=${ht:-0}
  hive[$t]=$hp
  if [ $with_ansible = 1 ]; then
    fresh
    read -r ap _ at < <(run_ansible "$t")
    ans[$t]=${ap:-0}; atasks[$t]=${at:-0}
  fi
  notrun=$(( ${atasks[$t]:-0} > ht ? ${atasks[$t]:-0} - ht : 0 ))
  printf '%-22s %6s %8s %6s %7s %8s %8s\n' "$t" "$hp" "${ans[$t]:-?}" "${bar[$t]:-0}" "$hf" "$notrun" "$(count_asserts "$t")" >>"$work/table"
  if [ "$hp" -lt "${bar[$t]:-0}" ]; then
    echo "== $t: hive passes $hp asserts, below the bar of ${bar[$t]}" >&2
    status=1
  fi
  if [ -n "${VERBOSE:-}" ] || [ "$hp" -lt "${bar[$t]:-0}" ]; then
    grep -E '^(failed-assert|end:)' "$work/hive-$t.log" | head -20 >&2 || true
  fi
done
cat "$work/table"
if [ $with_ansible = 1 ]; then
  {
    echo "# ansible-core $version integration targets: asserts passed by ansible-core"
    echo "# and the tasks it ran (measured by scripts/ansible-conformance.sh --ansible),"
    echo "# and the asserts hive must pass (the bar)."
    echo "target ansible ansible_tasks hive"
    for t in $targets; do
      echo "$t ${ans[$t]} ${atasks[$t]} ${hive[$t]}"
    done
  } >"$work/baseline.new"
  echo "ansible columns measured; baseline proposal (hive column: this run):"
  cat "$work/baseline.new"
  cp "$work/baseline.new" "${BASELINE_OUT:-$cache/baseline.new}"
fi
[ -n "${KEEP_LOGS:-}" ] && cp "$work"/*.log "$KEEP_LOGS"/ 2>/dev/null
[ -n "${KEEP_ROLES:-}" ] && rm -rf "$KEEP_ROLES" && cp -a "$roles" "$KEEP_ROLES"
exit $status
