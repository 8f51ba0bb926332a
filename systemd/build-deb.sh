#!/bin/sh
# Builds acerelay_<version>_<arch>.deb: a release build with the Swift runtime
# and Foundation linked statically (the edge host needs no Swift), the systemd
# unit, /etc/default/acerelay as a conffile, docs and maintainer scripts.
# Depends: is computed from the binary's NEEDED libraries with dpkg-shlibdeps.
# The last line of output is the path of the .deb.
#
# Environment:
#   ACERELAY_BIN           use this already built binary instead of building
#   ACERELAY_SCRATCH_PATH  SwiftPM scratch path for the build (default .build)
#   ACERELAY_DEB_DIR       where the .deb goes (default .build-deb)
#   ACERELAY_MAINTAINER    the Maintainer: field
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

# The version has one source: RelayServer.version (also what --version prints).
upstream=$(sed -n 's/^ *public static let version = "\([^"]*\)".*/\1/p' Sources/RelayCore/RelayServer.swift)
[ -n "$upstream" ] || { echo "build-deb: no RelayServer.version found" >&2; exit 1; }
# Debian revision of this packaging; bump it to rebuild the same upstream version.
revision=1
version="$upstream-$revision"
arch=$(dpkg --print-architecture)
maintainer=${ACERELAY_MAINTAINER:-"acerelay maintainers <acerelay@users.noreply.github.com>"}
out_dir=${ACERELAY_DEB_DIR:-$root/.build-deb}

bin=${ACERELAY_BIN:-}
if [ -z "$bin" ]; then
    scratch=${ACERELAY_SCRATCH_PATH:-$root/.build}
    echo "building acerelay $upstream (release, static Swift stdlib) in $scratch" >&2
    swift build -c release --static-swift-stdlib --product acerelay --scratch-path "$scratch" >&2
    bin=$scratch/release/acerelay
fi
[ -x "$bin" ] || { echo "build-deb: $bin is not an executable" >&2; exit 1; }

reported=$("$bin" --version)
[ "$reported" = "$upstream" ] || { echo "build-deb: binary says $reported, sources say $upstream" >&2; exit 1; }

# The point of the static stdlib: no Swift runtime library may be NEEDED.
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
if echo "$needed" | grep -E '^lib(swift|Foundation|FoundationEssentials|FoundationInternationalization|_FoundationICU|dispatch|BlocksRuntime)' >&2; then
    echo "build-deb: the binary needs the Swift runtime libraries above; build with --static-swift-stdlib" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/acerelay
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/default" "$stage/usr/share/doc/acerelay"

# Debug info is most of the binary; Swift needs its reflection metadata, which strip keeps.
strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$stage/usr/bin/acerelay" "$bin"
chmod 0755 "$stage/usr/bin/acerelay"
"$stage/usr/bin/acerelay" --version >/dev/null
install -m 0644 "$here/acerelay.service" "$stage/lib/systemd/system/acerelay.service"
install -m 0644 "$here/acerelay.default" "$stage/etc/default/acerelay"
gzip -9n < README.md > "$stage/usr/share/doc/acerelay/README.md.gz"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
date=$(date -R -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
cat > "$work/changelog.Debian" <<EOF
acerelay ($version) unstable; urgency=medium

  * Release $upstream, built from commit $commit.

 -- $maintainer  $date
EOF
gzip -9n < "$work/changelog.Debian" > "$stage/usr/share/doc/acerelay/changelog.Debian.gz"

cat > "$stage/usr/share/doc/acerelay/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: acerelay
Comment:
 The binary links statically the Swift runtime and Foundation (Apache-2.0
 with Runtime Library Exception) and the Swift packages swift-nio,
 swift-log, swift-argument-parser, swift-service-lifecycle, hummingbird,
 swift-http-types, swift-prometheus (Apache-2.0) and GRDB.swift (MIT).
 libev, libcurl and SQLite are linked dynamically from Debian.

Files: *
Copyright: 2026 the acerelay authors
License: acerelay
 No license has been chosen yet for acerelay; until one is, all rights are
 reserved by its authors.
EOF

# Depends: from NEEDED, resolved to Debian packages and their minimum versions.
mkdir -p "$work/shlibs/debian"
printf 'Source: acerelay\n\nPackage: acerelay\nArchitecture: any\n' > "$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$stage/usr/bin/acerelay" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: acerelay
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $shlibs, adduser
Section: net
Priority: optional
Description: zero-copy MPEG-TS relay and orchestrator for AceStream engines
 acerelay lets any number of IPTV players watch AceStream content through
 one engine session per content: libev event loops, an in-memory history
 per stream and sendfile fan-out to the players. Its control plane
 provisions engine containers through Docker, checks their health, keeps
 stream statistics in SQLite and serves an orchestrator-compatible REST API
 and Prometheus metrics.
 .
 The package installs a hardened systemd service (acerelay.service) that
 is enabled but not started; settings are in /etc/default/acerelay.
EOF
echo /etc/default/acerelay > "$stage/DEBIAN/conffiles"

cat > "$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e

if [ "$1" = "configure" ]; then
    if ! getent passwd acerelay >/dev/null; then
        adduser --system --group --quiet --home /var/lib/acerelay acerelay
    fi
    # The Docker socket is group docker: join it only where it exists (a unit
    # naming a missing group in SupplementaryGroups= would not start).
    if getent group docker >/dev/null && ! id -nG acerelay | tr ' ' '\n' | grep -qx docker; then
        adduser --quiet acerelay docker
    fi
    mkdir -p /var/lib/acerelay
    chown acerelay:acerelay /var/lib/acerelay
    chmod 0700 /var/lib/acerelay
fi

if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
    if command -v deb-systemd-helper >/dev/null; then
        # Remove a mask left by an earlier removal; enable on first install
        # (was-enabled is true then), keep the admin's choice on upgrades.
        deb-systemd-helper unmask acerelay.service >/dev/null || true
        if deb-systemd-helper --quiet was-enabled acerelay.service; then
            deb-systemd-helper enable acerelay.service >/dev/null || true
        else
            deb-systemd-helper update-state acerelay.service >/dev/null || true
        fi
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        # Not started on install: the operator configures /etc/default/acerelay first.
        # An upgrade restarts a running service on the new binary.
        if [ -n "$2" ]; then
            deb-systemd-invoke try-restart acerelay.service >/dev/null || true
        fi
    fi
fi

exit 0
EOF

cat > "$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e

if [ -d /run/systemd/system ] && [ "$1" = "remove" ]; then
    deb-systemd-invoke stop acerelay.service >/dev/null || true
fi

exit 0
EOF

cat > "$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e

if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi

if [ "$1" = "remove" ] && command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper mask acerelay.service >/dev/null || true
fi

if [ "$1" = "purge" ]; then
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper purge acerelay.service >/dev/null || true
        deb-systemd-helper unmask acerelay.service >/dev/null || true
    fi
    # The store (engines, streams, stats) goes with the package. The system
    # user stays, as Debian practice asks: files it owned may remain elsewhere
    # and a reused uid would inherit them.
    rm -rf /var/lib/acerelay
fi

exit 0
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

mkdir -p "$out_dir"
deb=$out_dir/acerelay_${version}_${arch}.deb
dpkg-deb --build --root-owner-group -Zxz "$stage" "$deb" >&2
echo "$deb"
