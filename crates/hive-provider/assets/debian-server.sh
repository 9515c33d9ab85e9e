#!/usr/bin/env bash
# Build the base image of hive's `docker` provider: a Debian root filesystem
# made with debootstrap and `docker import`ed, that boots like a small VM
# (systemd as PID 1, sshd, host keys generated at first boot).
#
# Nothing of the site's software (Docker engine, DRBD, registry) is in it:
# setup-hosts installs those like on any other server.
#
# Usage: debian-server.sh [IMAGE] [SUITE] [MIRROR]
#   IMAGE   defaults to hive/debian-server:bookworm
#   SUITE   defaults to bookworm
#   MIRROR  defaults to http://deb.debian.org/debian
#
# Idempotent: exits at once when IMAGE exists. Needs root, debootstrap and a
# Docker engine.
set -euo pipefail
image=${1:-hive/debian-server:bookworm}
suite=${2:-bookworm}
mirror=${3:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debian-server: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/hive-debian-server.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
echo "debian-server: debootstrap $suite into $root (takes one or two minutes)" >&2
debootstrap --variant=minbase \
  --include=openssh-server,sudo,systemd,systemd-sysv,dbus,iproute2,iptables,procps,ca-certificates,curl,gnupg,less,kmod,netbase,iputils-ping \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "debian-server: debootstrap failed" >&2
  exit 1
}

# Every server gets its own host keys at first boot.
rm -f "$root"/etc/ssh/ssh_host_*
# No console, no udev, no kernel-facing units in a container.
for u in getty@tty1.service serial-getty@console.service console-getty.service \
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-modules-load.service sys-kernel-config.mount \
  sys-kernel-debug.mount sys-kernel-tracing.mount systemd-remount-fs.service \
  systemd-firstboot.service getty.target; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
echo 'LANG=C.UTF-8' >"$root/etc/default/locale"
: >"$root/etc/machine-id"

# The boot program: the remounts a server needs before systemd, host keys,
# then systemd as PID 1.
cat >"$root/usr/local/sbin/hive-boot" <<'BOOT'
#!/bin/sh
# Boot a hive server container like a VM.
mount -o remount,rw /sys 2>/dev/null || true
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
else
  for h in /sys/fs/cgroup/*/; do
    mount -o remount,bind,rw "$h" 2>/dev/null || true
  done
fi
[ -s /etc/machine-id ] || systemd-machine-id-setup >/dev/null 2>&1 || true
if ! ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1; then
  ssh-keygen -A >/dev/null
fi
exec /lib/systemd/systemd
BOOT
chmod 0755 "$root/usr/local/sbin/hive-boot"

# Smaller image: no apt lists, docs, man pages or locales.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} + 2>/dev/null || true

tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV container=docker' \
  --change 'CMD ["/usr/local/sbin/hive-boot"]' \
  --change 'LABEL io.hive.image=debian-server' \
  - "$image" >/dev/null
echo "images: built $image"
