#!/usr/bin/env bash
# The main job: build the quickstart site (examples/quickstart) from nothing
# on this machine — Docker engine, base images, four servers as containers,
# setup-hosts, images, volumes, networks, services, initial data — and print
# how to reach it. Running it again checks the site and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-machine.sh
cargo build --release -q -p hive-cli
hive=target/release/hive
project=examples/quickstart
"$hive" -r "$project" all "$@"
ips=$("$hive" -r "$project" render "{{ groups['hives'] | intersect(groups[hive_stage]) | map('extract', hostvars, 'hive_private_ip') | join(' ') }}")
cat <<MSG

The quickstart site is up. Try:
  for ip in $ips; do curl -s http://\$ip:8080/; done            # the web service (on the hive that runs it)
  for ip in $ips; do curl -s http://\$ip:8080/data/initial.txt; done   # its initial data
  $hive -r $project ssh -- sudo tail /var/log/services/web.log   # its log on the repository server
  $hive -r $project history               # what each phase did
  $hive -r $project build-infra -D --yes  # remove the site
MSG
