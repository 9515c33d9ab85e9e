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
"$hive" -r "$project" status || true
urls=$("$hive" -r "$project" status | sed -n 's|^    tcp://\(.*:8080\)$|http://\1/|p' || true)
cat <<MSG

The quickstart site is up (\`$hive -r $project status\` shows it). Try:
$(for u in $urls; do echo "  curl -s $u                  # the web service"; echo "  curl -s ${u}data/initial.txt  # its initial data"; done)
  $hive -r $project logs web              # its log, collected on the repository server
  $hive -r $project history               # what each phase did
  $hive -r $project build-infra -D --yes  # remove the site
MSG
