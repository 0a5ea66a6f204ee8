#!/bin/sh
# Build a minimal Debian bookworm + python3 rootfs with debootstrap and import
# it into podman as localhost/debian-bookworm-python:local.  Run as root.
#
# Env overrides:
#   MIRROR    (default http://deb.debian.org/debian -- same as host apt sources)
#   SECMIRROR (default http://deb.debian.org/debian-security)
#   IMAGE     (default localhost/debian-bookworm-python:local)
#   ROOTFS    (default ./rootfs)
#   SLIM=1    strip docs/man/locales and keep them out of later installs (default 1)
set -eu

MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${SECMIRROR:-http://deb.debian.org/debian-security}
IMAGE=${IMAGE:-localhost/debian-bookworm-python:local}
ROOTFS=${ROOTFS:-$(pwd)/rootfs}
SLIM=${SLIM:-1}
NICE="nice -n 19"
T0=$(date +%s); t() { echo "   [t+$(( $(date +%s) - T0 ))s] $*"; }

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

# never rm through leftover mounts from an interrupted earlier run
umount "$ROOTFS/dev/pts" "$ROOTFS/proc" 2>/dev/null || true
if grep -q " $ROOTFS/" /proc/mounts; then echo "mounts left under $ROOTFS" >&2; exit 1; fi
rm -rf --one-file-system "$ROOTFS"
echo "== debootstrap -> $ROOTFS"
$NICE debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR"

t debootstrap done
echo "== apt sources (deb822, like the host) + security/updates upgrade"
rm -f "$ROOTFS/etc/apt/sources.list"
cat > "$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECMIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

if [ "$SLIM" = 1 ]; then
    # same idea as the official debian:*-slim images
    cat > "$ROOTFS/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
fi
cat > "$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > "$ROOTFS/etc/apt/apt.conf.d/99no-recommends"
# the host's apt tweaks (snapshot-backed mirror has old Release dates)
[ -f /etc/apt/apt.conf.d/99artifact-registry ] && \
    cp /etc/apt/apt.conf.d/99artifact-registry "$ROOTFS/etc/apt/apt.conf.d/"

cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
mount -t proc proc "$ROOTFS/proc"
mkdir -p "$ROOTFS/dev/pts" && mount --bind /dev/pts "$ROOTFS/dev/pts"
trap 'umount "$ROOTFS/dev/pts" "$ROOTFS/proc" 2>/dev/null || true' EXIT
$NICE chroot "$ROOTFS" sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get -y -q upgrade'
umount "$ROOTFS/dev/pts" "$ROOTFS/proc"; trap - EXIT

t chroot upgrade done
echo "== cleanup"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* \
       "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old \
       "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
: > "$ROOTFS/etc/resolv.conf"          # podman bind-mounts its own
echo debian > "$ROOTFS/etc/hostname"
if [ "$SLIM" = 1 ]; then
    find "$ROOTFS/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
    find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*
    find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
fi
# /dev nodes are provided by the runtime; don't ship debootstrap's
rm -rf "$ROOTFS"/dev/* 
du -sh "$ROOTFS"

t cleanup done
echo "== podman import -> $IMAGE"
podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
tar --numeric-owner --xattrs -C "$ROOTFS" -c . | \
    $NICE podman import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase bookworm + python3 ($MIRROR)" \
        - "$IMAGE"
t import done
podman image ls "$IMAGE"
podman run --rm "$IMAGE" sh -c 'cat /etc/debian_version; python3 --version; python3 -m pip --version; python3 -m venv /tmp/v && echo venv-ok'
