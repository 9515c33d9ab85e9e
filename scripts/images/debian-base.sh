#!/usr/bin/env bash
# hive-test/debian:bookworm — a minimal Debian bookworm (debootstrap minbase)
# used by hive-image's role tests and benchmark as the image roles are applied
# to. Idempotent: does nothing when the image exists. Needs root and
# debootstrap; fetches from http://deb.debian.org/debian.
set -euo pipefail
image=hive-test/debian:bookworm
docker image inspect "$image" >/dev/null 2>&1 && exit 0
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' - "$image" >/dev/null
echo "images: built $image"
