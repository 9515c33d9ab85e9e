#!/usr/bin/env bash
# hive-swarm on its own, as its README promises: the `deploy` example deploys
# a service to the local engine's swarm with nothing else of hive, a second
# run changes nothing, and --destroy removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ] ||
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
dir=$(mktemp -d)
trap 'cargo run -q -p hive-swarm --example deploy -- "$dir/services.yml" --destroy >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
cat >"$dir/services.yml" <<'YAML'
hswarm-example-hello:
  image: hive-test/busybox:1
  command: [httpd, -f, -p, "8080"]
  endpoint_mode: dnsrr
  environment: {GREETING: hello}
YAML
run() { cargo run -q -p hive-swarm --example deploy -- "$dir/services.yml" "$@" 2>&1; }
expect() {
    local out=$1 want=$2
    if ! grep -qF -- "$want" <<<"$out"; then
        printf 'test-swarm-example: expected %q in:\n%s\n' "$want" "$out" >&2
        exit 1
    fi
}
expect "$(run)" "service hswarm-example-hello: created"
expect "$(run)" "no change"
expect "$(run --destroy)" "service hswarm-example-hello: removed"
echo "test-swarm-example: ok"
