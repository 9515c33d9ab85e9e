#!/usr/bin/env bash
# The README's main command as a test: run ./scripts/quickstart.sh exactly as
# the README says, check what it printed and that the site answers, run it a
# second time (nothing may change), then remove the site.
set -euo pipefail
cd "$(dirname "$0")/.."
hive=target/release/hive
project=examples/quickstart
log=$(mktemp)
cleanup() {
  [ -x "$hive" ] && "$hive" -r "$project" --force-unlock build-infra -D --yes >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT
fail() { echo "test-quickstart: $*" >&2; echo "--- output of quickstart.sh" >&2; cat "$log" >&2; exit 1; }

echo "test-quickstart: ./scripts/quickstart.sh"
./scripts/quickstart.sh >"$log" 2>&1 || fail "quickstart.sh exited $?"
grep -q "panicked" "$log" && fail "hive panicked"
grep -Eq "^all: (done|no change)" "$log" || fail "no 'all: done' line"
grep -q "The quickstart site is up" "$log" || fail "no closing message"
grep -q "^site quickstart.example, stage private: healthy" "$log" || fail "hive status does not say the site is healthy"
urls=$(sed -n 's/^  curl -s \(http:[^ ]*8080\/\) .*# the web service$/\1/p' "$log")
[ "$(echo "$urls" | wc -w)" -ge 1 ] || fail "no endpoint of the web service in the message"
for u in $urls; do
  page=$(curl -s -m 3 "$u" || true)
  case "$page" in *"hello from quickstart.example"*) ;; *) fail "$u answers '$page'" ;; esac
done
echo "test-quickstart: the web service answers on $urls"

echo "test-quickstart: ./scripts/quickstart.sh again"
./scripts/quickstart.sh >"$log" 2>&1 || fail "second quickstart.sh exited $?"
grep -q "^all: no change" "$log" || fail "the second run changed something"
echo "test-quickstart: second run: no change; removing the site"
"$hive" -r "$project" build-infra -D --yes >/dev/null
left=$(docker ps -a --format '{{.Names}}' | grep -c 'quickstart.example' || true)
[ "$left" -eq 0 ] || fail "$left containers of the site left after build-infra -D"
echo "test-quickstart: ok"
