#!/usr/bin/env bash
# Prepare a fresh Debian machine for hive's tests and its main job:
# the Debian packages hive's tests talk to (Docker engine, sshd, DRBD tools,
# debootstrap, the registry), moto for the aws provider, and a running
# Docker engine.
#
# Idempotent: packages already present and a Docker engine already answering
# are left alone. Needs root.
set -euo pipefail

need_pkgs=(docker.io openssh-server openssh-client drbd-utils debootstrap
  busybox-static apache2-utils docker-registry libssl-dev pkg-config lvm2 parted
  iproute2 iptables ca-certificates curl ansible-core dnsutils python3-pip python3-venv jq
  xorriso)
# The gcp provider's test makes its service account key with openssl.
need_pkgs+=(openssl)

missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-machine: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A Docker engine: use the one that answers, or start one.
if ! docker info >/dev/null 2>&1; then
  echo "setup-machine: starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/hive-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "setup-machine: dockerd did not start, see /var/log/hive-dockerd.log" >&2; exit 1; }
fi
echo "setup-machine: docker engine $(docker version --format '{{.Server.Version}}') ready"

# moto's EC2 API in server mode, which the aws provider's tests start on
# 127.0.0.1 (crates/hive-cli/tests/aws_site.rs), in its own virtual
# environment.
if [ ! -x /opt/hive-moto/bin/moto_server ]; then
  echo "setup-machine: installing moto[server] in /opt/hive-moto"
  python3 -m venv /opt/hive-moto
  /opt/hive-moto/bin/pip install -q 'moto[server]>=5,<6'
fi

# ksvalidator (PyPI pykickstart), which checks the kickstart provider's files.
ks_venv=/opt/hive-tools/pykickstart
if ! "$ks_venv/bin/ksvalidator" --help >/dev/null 2>&1; then
  echo "setup-machine: installing pykickstart in $ks_venv"
  python3 -m venv "$ks_venv"
  "$ks_venv/bin/pip" install -q pykickstart
fi

# Local images that tests build on (Docker Hub is not reachable here).
for s in "$(dirname "$0")"/images/*.sh; do
  [ -x "$s" ] && "$s"
done
exit 0
