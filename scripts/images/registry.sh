#!/usr/bin/env bash
# hive/registry:2 — the private registry image used by setup-hosts tests
# (Docker Hub cannot be reached): Debian's docker-registry (distribution
# 2.8) binary, the libraries and loader it needs and a config file, imported
# as an image. `registry garbage-collect -m /etc/docker/registry/config.yml`
# works inside it as with the upstream image.
# Idempotent: exits at once when the image exists. Needs the docker-registry
# package (installed by scripts/setup-machine.sh).
set -euo pipefail
image=${1:-hive/registry:2}
docker image inspect "$image" >/dev/null 2>&1 && exit 0
bin=/usr/bin/docker-registry
[ -x "$bin" ] || { echo "registry.sh: $bin is missing (apt-get install docker-registry)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc/docker/registry" "$root/var/lib/registry"
chmod 1777 "$root/tmp"
cp "$bin" "$root/bin/registry"
ln -s registry "$root/bin/docker-registry"
# The shared libraries and the dynamic loader, at the paths the binary asks for.
for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^\t\// {print $1}'); do
  [ -f "$lib" ] || continue
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cat >"$root/etc/docker/registry/config.yml" <<'YML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YML
echo 'root:x:0:0:root:/:/bin/registry' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/bin' \
  --change 'EXPOSE 5000' \
  --change 'VOLUME /var/lib/registry' \
  --change 'ENTRYPOINT ["/bin/registry"]' \
  --change 'CMD ["serve", "/etc/docker/registry/config.yml"]' \
  - "$image" >/dev/null
echo "images: built $image"
