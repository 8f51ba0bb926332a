#!/bin/sh
# Installs the .deb into a clean Debian 12 root with no Swift and plays
# `acerelay demo` there:
#  1. debootstrap --variant=minbase bookworm into a temp dir, from the mirror
#     apt on this machine uses (about a minute; ACERELAY_ROOTFS_CACHE=FILE.tar
#     keeps a copy for the next run);
#  2. apt-get install ./acerelay_*.deb inside it (chroot), which must pull the
#     runtime libraries from Depends: and create the user;
#  3. checks the unit, the conffile, the user and that no Swift library exists;
#  4. runs `acerelay demo --duration 10` in the chroot as the acerelay user and
#     fetches the stream from the host (same network namespace): MPEG-TS bytes
#     must arrive.
# Needs root, debootstrap, curl. Usage: systemd/test-deb.sh [path/to/acerelay.deb]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
deb=${1:-}
if [ -z "$deb" ]; then
    deb=$("$here/build-deb.sh" | tail -n 1)
fi
[ -f "$deb" ] || { echo "FAIL: no .deb at $deb" >&2; exit 1; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "FAIL: debootstrap missing (apt-get install -y debootstrap)" >&2; exit 1; }

# The Debian mirror apt already uses: deb822 sources first, then sources.list.
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
    /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") { print uri; exit } }')
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "FAIL: no bookworm mirror in /etc/apt/sources.list*" >&2; exit 1; }

root=$(mktemp -d /var/tmp/acerelay-deb-root.XXXXXX)
# mktemp makes it 0700: the root of a system others log into must be 0755.
chmod 0755 "$root"
demo_pid=
cleanup() {
    [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null || true
    umount "$root/proc" 2>/dev/null || true
    umount "$root/dev" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT

start=$(date +%s)
if [ -n "${ACERELAY_ROOTFS_CACHE:-}" ] && [ -f "$ACERELAY_ROOTFS_CACHE" ]; then
    echo "== clean bookworm root from $ACERELAY_ROOTFS_CACHE"
    tar -xf "$ACERELAY_ROOTFS_CACHE" -C "$root"
else
    echo "== debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$root" "$mirror" > "$root.debootstrap.log" 2>&1 || {
        tail -n 30 "$root.debootstrap.log"; rm -f "$root.debootstrap.log"; echo "FAIL: debootstrap" >&2; exit 1; }
    rm -f "$root.debootstrap.log"
    if [ -n "${ACERELAY_ROOTFS_CACHE:-}" ]; then
        tar -cf "$ACERELAY_ROOTFS_CACHE" -C "$root" .
    fi
fi
echo "   root ready after $(( $(date +%s) - start )) s"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

if in_root sh -c 'command -v swift; ls /usr/lib/swift /usr/lib/x86_64-linux-gnu/libswiftCore.so 2>/dev/null' | grep -q .; then
    echo "FAIL: the clean root has Swift in it" >&2
    exit 1
fi

mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
install_start=$(date +%s)
echo "== apt-get install ./$(basename "$deb") in the chroot"
in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/$(basename "$deb")" \
    > "$root/tmp/install.log" 2>&1 || { tail -n 40 "$root/tmp/install.log"; echo "FAIL: apt-get install" >&2; exit 1; }
grep -E '^(Setting up|Unpacking) ' "$root/tmp/install.log" | sed 's/^/   /'
echo "   installed in $(( $(date +%s) - install_start )) s"

fail() { echo "FAIL: $*" >&2; exit 1; }
echo "== installed files, user and unit"
[ -x "$root/usr/bin/acerelay" ] || fail "/usr/bin/acerelay missing"
[ -f "$root/lib/systemd/system/acerelay.service" ] || fail "unit missing"
[ -f "$root/etc/default/acerelay" ] || fail "/etc/default/acerelay missing"
grep -qx /etc/default/acerelay "$root/var/lib/dpkg/info/acerelay.conffiles" || fail "/etc/default/acerelay is not a conffile"
in_root getent passwd acerelay | grep -q ':/var/lib/acerelay:' || fail "no system user acerelay with home /var/lib/acerelay"
[ -L "$root/etc/systemd/system/multi-user.target.wants/acerelay.service" ] || fail "unit not enabled"
if in_root sh -c 'ldd /usr/bin/acerelay' | grep -E 'libswift|libFoundation|not found'; then
    fail "acerelay needs libraries the root does not have (above)"
fi
version=$(in_root /usr/bin/acerelay --version)
echo "   acerelay $version, user acerelay, unit enabled, conffile registered, every library found"

echo "== acerelay demo --duration 10 in the chroot, as user acerelay"
chroot --userspec=acerelay:acerelay "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/var/lib/acerelay \
    /usr/bin/acerelay demo --duration 10 --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    > "$root/tmp/demo.out" 2> "$root/tmp/demo.err" &
demo_pid=$!
url=
for _ in $(seq 1 100); do
    url=$(sed -n "s/.*Play it: *mpv '\(http[^']*\)'.*/\1/p" "$root/tmp/demo.out")
    [ -n "$url" ] && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$url" ] || { cat "$root/tmp/demo.out" "$root/tmp/demo.err"; fail "the demo printed no stream URL"; }
echo "   stream: $url"
# Fetch 4 s of the stream from the host; curl exits 28 when --max-time ends the transfer.
curl -s --max-time 4 -o "$root/tmp/stream.ts" "$url" || [ $? -eq 28 ] || fail "curl could not fetch $url"
bytes=$(stat -c %s "$root/tmp/stream.ts")
sync_byte=$(od -An -tx1 -N1 "$root/tmp/stream.ts" | tr -d ' ')
echo "   received $bytes bytes, first byte 0x$sync_byte"
[ "$bytes" -ge 188000 ] || fail "fewer than 1000 TS packets arrived"
[ "$sync_byte" = 47 ] || fail "the stream does not start with the TS sync byte"
status=0
wait "$demo_pid" || status=$?
demo_pid=
[ "$status" -eq 0 ] || { tail -n 20 "$root/tmp/demo.err"; fail "demo exited with $status"; }
echo "   demo stopped by itself after its duration, exit 0"
echo "PASS in $(( $(date +%s) - start )) s"
