#!/usr/bin/env bash
# hive/debian-server:bookworm — the base image of the `docker` provider
# (Debian via debootstrap, systemd and sshd, nothing of the site preinstalled).
# The build script lives with the crate that embeds it; skips when the image exists.
set -euo pipefail
exec "$(dirname "$0")/../../crates/hive-provider/assets/debian-server.sh" "$@"
