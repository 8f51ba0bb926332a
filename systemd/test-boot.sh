#!/bin/sh
# Boots systemd 252 as PID 1 in a bookworm container (systemd-nspawn, private
# network) with the .deb installed, starts acerelay.service under its full
# hardening and checks from inside that it serves /ace/status, runs as user
# acerelay, and that its relay threads run at nice -10 and the control plane
# at +10. The container powers itself off.
#
# With ACERELAY_BOOT_NOTIFY=1 the unit is used as shipped (Type=notify,
# WatchdogSec=30): that needs a binary that sends READY=1. Without it a
# drop-in makes the service Type=simple without watchdog, which tests the
# sandbox alone.
# Needs root, debootstrap, systemd-container. Usage: systemd/test-boot.sh [deb]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
deb=${1:-}
[ -n "$deb" ] || deb=$("$here/build-deb.sh" | tail -n 1)
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
command -v systemd-nspawn >/dev/null || { echo "FAIL: systemd-nspawn missing (apt-get install -y systemd-container)" >&2; exit 1; }

mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
    /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") { print uri; exit } }')
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "FAIL: no bookworm mirror in /etc/apt/sources.list*" >&2; exit 1; }

root=$(mktemp -d /var/tmp/acerelay-boot-root.XXXXXX)
# mktemp makes it 0700: the root of a system others log into must be 0755.
chmod 0755 "$root"
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT
start=$(date +%s)
if [ -n "${ACERELAY_ROOTFS_CACHE:-}" ] && [ -f "$ACERELAY_ROOTFS_CACHE" ]; then
    tar -xf "$ACERELAY_ROOTFS_CACHE" -C "$root"
else
    debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
mount -t proc proc "$root/proc"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get -q update >/dev/null && apt-get install -y -q systemd systemd-sysv dbus /tmp/$(basename "$deb") >/tmp/install.log 2>&1" \
    || { tail -n 30 "$root/tmp/install.log"; echo "FAIL: install" >&2; exit 1; }
umount "$root/proc"
echo "== root with systemd and acerelay ready after $(( $(date +%s) - start )) s"

if [ "${ACERELAY_BOOT_NOTIFY:-0}" != 1 ]; then
    mkdir -p "$root/etc/systemd/system/acerelay.service.d"
    printf '[Service]\nType=simple\nWatchdogSec=0\n' > "$root/etc/systemd/system/acerelay.service.d/sandbox-only.conf"
fi
# Extra unit lines to try, e.g. ACERELAY_BOOT_DROPIN='Nice=0'.
if [ -n "${ACERELAY_BOOT_DROPIN:-}" ]; then
    mkdir -p "$root/etc/systemd/system/acerelay.service.d"
    printf '[Service]\n%s\n' "$ACERELAY_BOOT_DROPIN" > "$root/etc/systemd/system/acerelay.service.d/extra.conf"
fi
# No engines, no Docker: the relay and the API serve anyway.
printf 'ACERELAY_PROVISION=off\nACERELAY_WORKERS=2\n' >> "$root/etc/default/acerelay"

cat > "$root/usr/local/sbin/acerelay-check" <<'EOF'
#!/bin/bash
# Runs inside the booted container; writes its findings to /check.txt and powers off.
exec > /check.txt 2>&1
systemctl start acerelay.service
for _ in $(seq 1 50); do
    { exec 3<>/dev/tcp/127.0.0.1/8080; } 2>/dev/null && break
    sleep 0.2
done
printf 'GET /ace/status HTTP/1.0\r\n\r\n' >&3 && { timeout 3 head -c 400 <&3; echo; }
exec 3<&-
# Some control-plane work for a while: the API and the status page, every 0.5 s for ${ACERELAY_BOOT_SECONDS:-5} s.
for _ in $(seq 1 $(( ${ACERELAY_BOOT_SECONDS:-5} * 2 ))); do
    for port in 8000 8080; do
        { exec 4<>/dev/tcp/127.0.0.1/$port; } 2>/dev/null || continue
        printf 'GET /%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$([ $port = 8000 ] && echo engines || echo ace/status)" >&4
        timeout 3 cat <&4 >/dev/null
        exec 4<&-
    done
    sleep 0.5
done
echo "active: $(systemctl is-active acerelay.service)"
pid=$(systemctl show -p MainPID --value acerelay.service)
echo "user: $(ps -o user= -p "$pid" 2>/dev/null || stat -c %U /proc/$pid)"
for task in /proc/$pid/task/*; do
    # comm, then field 19 of stat (nice), counted after the parenthesised comm.
    echo "thread $(cat $task/comm) nice $(sed 's/.*) //' $task/stat | cut -d' ' -f17)"
done | sort | uniq -c
echo "libdispatch priority messages: $(journalctl -u acerelay.service -o cat | grep -c 'Failed to set thread priority')"
journalctl -u acerelay.service --no-pager -o cat | grep -v 'Failed to set thread priority' | tail -n 15
systemctl poweroff
EOF
sed -i "s/ACERELAY_BOOT_SECONDS:-5/ACERELAY_BOOT_SECONDS:-${ACERELAY_BOOT_SECONDS:-5}/g" "$root/usr/local/sbin/acerelay-check"
chmod 755 "$root/usr/local/sbin/acerelay-check"
cat > "$root/etc/systemd/system/acerelay-check.service" <<'EOF'
[Unit]
Description=check acerelay under its unit, then power off
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/acerelay-check
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/acerelay-check.service "$root/etc/systemd/system/multi-user.target.wants/acerelay-check.service"

echo "== booting"
boot=$(date +%s)
timeout 180 systemd-nspawn -b --register=no --keep-unit --quiet --console=pipe --private-network -D "$root" >/dev/null 2>&1 || true
echo "   container ran $(( $(date +%s) - boot )) s"
[ -f "$root/check.txt" ] || { echo "FAIL: the check never ran" >&2; exit 1; }
cat "$root/check.txt"
grep -q '"version"' "$root/check.txt" || { echo "FAIL: /ace/status did not answer under the unit" >&2; exit 1; }
grep -q '^active: active' "$root/check.txt" || { echo "FAIL: the service is not active" >&2; exit 1; }
grep -q '^user: acerelay' "$root/check.txt" || { echo "FAIL: not running as acerelay" >&2; exit 1; }
grep -Eq 'thread relay-[0-9]+ nice -10' "$root/check.txt" || { echo "FAIL: relay threads are not at nice -10" >&2; exit 1; }
echo "PASS in $(( $(date +%s) - start )) s"
