#!/usr/bin/env bash
# Build the tiny real guest OS used by the integration tests (see README.md here and
# /work/shared/spec/test-guest.md for the recipe and the measurements behind it).
#
#   usage: build.sh OUTPUT_ISO
#
# Everything comes from Debian packages fetched with `apt-get download` (never installed) into
# a download cache (${TEST_GUEST_CACHE:-$(dirname OUTPUT_ISO)/debs}), so a second build needs no
# network. The result is a hybrid ISO (volume id TESTGUEST) with isolinux (BIOS), a standalone
# GRUB in an EFI System Partition (UEFI), Debian's kernel and
# a busybox initramfs whose /init prints markers to serial and VGA, marks blank disks, powers
# off on the ACPI power button and keeps shells on tty1 and ttyS0.
# Progress goes to stderr; the ISO is written to a temp name and renamed into place.
set -euo pipefail

log() { printf 'test-guest: %s\n' "$*" >&2; }
die() { printf 'test-guest: error: %s\n' "$*" >&2; exit 1; }

if [[ $# -ne 1 || -z "$1" || "$1" == -* ]]; then
  printf 'usage: %s OUTPUT_ISO\n' "${0##*/}" >&2
  exit 2
fi

START_SECONDS=$SECONDS
OUTPUT=$1
OUT_DIR=$(dirname -- "$OUTPUT")
mkdir -p -- "$OUT_DIR"
OUT_DIR=$(cd -- "$OUT_DIR" && pwd)
OUTPUT="$OUT_DIR/$(basename -- "$OUTPUT")"
DEBS=${TEST_GUEST_CACHE:-$OUT_DIR/debs}
mkdir -p -- "$DEBS"
DEBS=$(cd -- "$DEBS" && pwd)

# Fixed timestamp for every file in the initramfs and the ISO (reproducible output).
EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
export SOURCE_DATE_EPOCH=$EPOCH

# Kernel modules whose dependency closure goes into the initramfs (disk controllers, CD-ROM,
# `button` + `evdev` for the ACPI power button, the NIC drivers of the three models QEMU Manager
# offers (virtio_net, e1000e, 8139cp: QEMU's rtl8139 is a C+ chip, which 8139cp drives), the TPM
# drivers, efivarfs for UEFI variables, virtio_balloon for the balloon's view, pvpanic_mmio; Debian builds
# the TPM drivers in). /init modprobes them in this order.
MODULES="virtio_pci virtio_blk virtio_scsi ata_piix ahci nvme sd_mod sr_mod isofs button evdev virtio_net e1000e 8139cp tpm_tis tpm_crb efivarfs virtio_console virtio_balloon pvpanic_mmio"
KERNEL_CMDLINE="console=tty0 console=ttyS0,115200 quiet mitigations=off cryptomgr.notests"

# ---------------------------------------------------------------------------------------------
# Host tools
# ---------------------------------------------------------------------------------------------
for tool in apt-get apt-cache dpkg-deb gzip find sort touch readelf; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required (a Debian/Ubuntu host is assumed)"
done
if ! command -v xorriso >/dev/null 2>&1; then
  if [[ $EUID -eq 0 ]]; then
    log "installing xorriso"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends xorriso >&2 \
      || die "could not install xorriso"
  else
    printf 'test-guest: xorriso is missing; install it with:\n  sudo apt-get install -y --no-install-recommends xorriso\n' >&2
    exit 1
  fi
fi

APT_OPTS=()
[[ $EUID -eq 0 ]] && APT_OPTS+=(-o APT::Sandbox::User=root)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-guest-build.XXXXXX")
TMP_ISO=""
CHILD=""
DL_DIR=""
cleanup() {
  rm -rf -- "$WORK"
  if [[ -n "$DL_DIR" ]]; then rm -rf -- "$DL_DIR"; fi
  if [[ -n "$TMP_ISO" ]]; then rm -f -- "$TMP_ISO"; fi
}
# On INT/TERM/HUP stop the running step (its whole process group) before removing the work
# dir, so nothing keeps writing into it.
on_signal() {
  trap - INT TERM HUP
  if [[ -n "$CHILD" ]]; then
    kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  log "interrupted"
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM HUP

# Run a long step as a background process group and wait for it, so that on_signal can run
# (bash defers traps while a foreground child runs) and stop it.
run() {
  local rc=0
  if command -v setsid >/dev/null 2>&1; then
    setsid -w "$@" &
  else
    "$@" &
  fi
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}

# ---------------------------------------------------------------------------------------------
# Downloads (cached)
# ---------------------------------------------------------------------------------------------
APT_UPDATED=0
apt_update_once() {
  [[ $APT_UPDATED -eq 0 ]] || return 0
  APT_UPDATED=1
  log "running apt-get update"
  run apt-get update >&2 || log "apt-get update failed"
}

# Newest cached .deb for an exact package name, or nothing.
cached_deb() {
  local f
  f=$(find "$DEBS" -maxdepth 1 -type f -name "$1_*.deb" -printf '%f\n' | sort -V | tail -n 1)
  [[ -n "$f" ]] && printf '%s\n' "$DEBS/$f"
  return 0
}

# apt-get download into a private temp dir, then move the .deb into the cache (so concurrent
# builds and interrupted downloads never leave a partial file under a final name).
download() {
  local pkg=$1 f rc=1
  DL_DIR=$(mktemp -d "$DEBS/.download.XXXXXX")
  log "downloading $pkg"
  if run env -C "$DL_DIR" apt-get download "${APT_OPTS[@]}" "$pkg" >&2; then
    for f in "$DL_DIR"/*.deb; do
      [[ -e "$f" ]] || break
      mv -f -- "$f" "$DEBS/"
      rc=0
    done
  fi
  rm -rf -- "$DL_DIR"
  DL_DIR=""
  return "$rc"
}

# fetch/fetch_kernel set FETCHED (they are not run in $(...) subshells, so that a signal trap
# sees and stops a running download).
FETCHED=""
fetch() {
  local pkg=$1
  if [[ -z "$(cached_deb "$pkg")" ]]; then
    if ! download "$pkg"; then
      apt_update_once
      download "$pkg" || die "could not download $pkg"
    fi
  fi
  FETCHED=$(cached_deb "$pkg")
}

resolve_kernel() {
  apt-cache depends linux-image-amd64 2>/dev/null \
    | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }'
}

# Any concrete kernel already in the cache wins (keeps rebuilds offline and identical);
# otherwise resolve the metapackage, download, and on failure update, resolve again, retry once.
fetch_kernel() {
  local f pkg
  f=$(find "$DEBS" -maxdepth 1 -type f -name 'linux-image-[0-9]*-amd64_*.deb' -printf '%f\n' \
        | sort -V | tail -n 1)
  if [[ -n "$f" ]]; then
    FETCHED=$DEBS/$f
    return 0
  fi
  pkg=$(resolve_kernel)
  if [[ -z "$pkg" ]]; then
    apt_update_once
    pkg=$(resolve_kernel)
    [[ -n "$pkg" ]] || die "cannot resolve linux-image-amd64 to a concrete kernel package"
  fi
  log "kernel package: $pkg"
  if ! download "$pkg"; then
    apt_update_once
    pkg=$(resolve_kernel)
    [[ -n "$pkg" ]] || die "cannot resolve linux-image-amd64 after apt-get update"
    log "kernel package after apt-get update: $pkg"
    download "$pkg" || die "could not download $pkg"
  fi
  f=$(cached_deb "$pkg")
  [[ -n "$f" ]] || die "download of $pkg produced no .deb"
  FETCHED=$f
}

log "download cache: $DEBS"
fetch_kernel
KERNEL_DEB=$FETCHED
fetch busybox-static
BUSYBOX_DEB=$FETCHED
fetch isolinux
ISOLINUX_DEB=$FETCHED
fetch syslinux-common
SYSLINUX_DEB=$FETCHED
# UEFI boot: GRUB's EFI modules and grub-mkimage (unpacked and run from the temp dir, never
# installed: the host's boot loader is not touched) and mtools for the FAT EFI System Partition.
fetch grub-efi-amd64-bin
GRUB_EFI_DEB=$FETCHED
fetch grub-common
GRUB_COMMON_DEB=$FETCHED
fetch mtools
MTOOLS_DEB=$FETCHED
# The guest agent: Debian's qemu-ga and the packages of the shared libraries it needs (unpacked
# into their own tree; only the ELF closure of qemu-ga is copied into the initramfs).
AGENT_PKGS="qemu-guest-agent libc6 libglib2.0-0 libpcre2-8-0 libnuma1 libudev1 liburing2 libmount1 libblkid1 libselinux1 libffi8"
AGENT_DEBS=()
for pkg in $AGENT_PKGS; do
  fetch "$pkg"
  AGENT_DEBS+=("$FETCHED")
done
log "using $(basename -- "$KERNEL_DEB")"

# ---------------------------------------------------------------------------------------------
# Unpack
# ---------------------------------------------------------------------------------------------
log "unpacking packages"
PKGROOT=$WORK/pkgroot
mkdir -p "$PKGROOT"
for deb in "$KERNEL_DEB" "$BUSYBOX_DEB" "$ISOLINUX_DEB" "$SYSLINUX_DEB" "$GRUB_EFI_DEB" \
    "$GRUB_COMMON_DEB" "$MTOOLS_DEB"; do
  run dpkg-deb -x "$deb" "$PKGROOT"
done

AGENTROOT=$WORK/agentroot
mkdir -p "$AGENTROOT"
for deb in "${AGENT_DEBS[@]}"; do
  run dpkg-deb -x "$deb" "$AGENTROOT"
done

BB=$PKGROOT/bin/busybox
[[ -x "$BB" ]] || die "busybox-static did not provide bin/busybox"
KVER=$(find "$PKGROOT/lib/modules" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
[[ -n "$KVER" ]] || die "no kernel modules directory in $(basename -- "$KERNEL_DEB")"
VMLINUZ=$PKGROOT/boot/vmlinuz-$KVER
[[ -f "$VMLINUZ" ]] || die "no boot/vmlinuz-$KVER in $(basename -- "$KERNEL_DEB")"
ISOLINUX_BIN=$PKGROOT/usr/lib/ISOLINUX/isolinux.bin
ISOHDPFX=$PKGROOT/usr/lib/ISOLINUX/isohdpfx.bin
LDLINUX=$PKGROOT/usr/lib/syslinux/modules/bios/ldlinux.c32
GRUB_MKIMAGE=$PKGROOT/usr/bin/grub-mkimage
GRUB_EFI_MODS=$PKGROOT/usr/lib/grub/x86_64-efi
MFORMAT=$PKGROOT/usr/bin/mformat
MMD=$PKGROOT/usr/bin/mmd
MCOPY=$PKGROOT/usr/bin/mcopy
for f in "$ISOLINUX_BIN" "$ISOHDPFX" "$LDLINUX" "$GRUB_MKIMAGE" "$GRUB_EFI_MODS/linux.mod" \
    "$MFORMAT" "$MMD" "$MCOPY"; do
  [[ -f "$f" ]] || die "missing $f"
done
log "kernel $KVER"

# ---------------------------------------------------------------------------------------------
# Kernel modules: depmod the full tree, copy the closure of $MODULES, depmod the subset
# ---------------------------------------------------------------------------------------------
log "depmod (full tree)"
run "$BB" depmod -b "$PKGROOT" "$KVER"
MODDIR=$PKGROOT/lib/modules/$KVER

# modules.dep lines are "path.ko: dep.ko dep.ko ..." with the full (transitive) dependency
# list; the closure is still computed recursively to be safe.
MODULE_PATHS=$(awk -v want="$MODULES" '
  function modname(p,   n) { n = p; sub(/^.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n); gsub(/-/, "_", n); return n }
  function add(name,   i, parts, n) {
    if (name in seen) return
    seen[name] = 1
    if (!(name in path)) { missing[name] = 1; return }
    out[path[name]] = 1
    n = split(deps[name], parts, " ")
    for (i = 1; i <= n; i++) add(modname(parts[i]))
  }
  {
    p = $1; sub(/:$/, "", p)
    name = modname(p)
    path[name] = p
    d = $0; sub(/^[^:]*:[ \t]*/, "", d)
    deps[name] = d
  }
  END {
    n = split(want, w, " ")
    for (i = 1; i <= n; i++) { x = w[i]; gsub(/-/, "_", x); add(x) }
    for (m in missing) print "MISSING " m
    for (p in out) print p
  }' "$MODDIR/modules.dep" | sort)

INITRAMFS=$WORK/initramfs
IMODDIR=$INITRAMFS/lib/modules/$KVER
mkdir -p "$IMODDIR"
count=0
while IFS= read -r line; do
  [[ -n "$line" ]] || continue
  if [[ "$line" == MISSING\ * ]]; then
    m=${line#MISSING }
    # A module built into the kernel needs no file.
    if grep -qE "/${m//_/[_-]}\.ko$" "$MODDIR/modules.builtin" 2>/dev/null; then
      log "module $m is built in"
      continue
    fi
    die "kernel module $m not found in $KVER"
  fi
  mkdir -p "$IMODDIR/$(dirname -- "$line")"
  cp "$MODDIR/$line" "$IMODDIR/$line"
  count=$((count + 1))
done <<<"$MODULE_PATHS"
for f in modules.builtin modules.order; do
  [[ -f "$MODDIR/$f" ]] && cp "$MODDIR/$f" "$IMODDIR/$f"
done
"$BB" depmod -b "$INITRAMFS" "$KVER"
log "copied $count kernel modules ($(du -sk "$IMODDIR" | cut -f1) KiB)"

# ---------------------------------------------------------------------------------------------
# Initramfs userland: static busybox, one symlink per applet, /init, acpid handler
# ---------------------------------------------------------------------------------------------
log "assembling initramfs"
mkdir -p "$INITRAMFS"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,var/log,var/run,etc/acpi/PWRF,etc/udhcpc,www}
chmod 1777 "$INITRAMFS/tmp"
cp "$BB" "$INITRAMFS/bin/busybox"
chmod 0755 "$INITRAMFS/bin/busybox"
while IFS= read -r applet; do
  [[ -n "$applet" && "$applet" != "bin/busybox" ]] || continue
  mkdir -p "$INITRAMFS/$(dirname -- "$applet")"
  ln -sfn /bin/busybox "$INITRAMFS/$applet"
done < <("$BB" --list-full)
[[ -L "$INITRAMFS/bin/sh" ]] || die "busybox has no sh applet"

# qemu-ga and the closure of its DT_NEEDED libraries, found in the unpacked agent packages only
# (never the host's), copied to /lib/x86_64-linux-gnu with the loader at /lib64.
QGA=$AGENTROOT/usr/sbin/qemu-ga
[[ -x "$QGA" ]] || die "qemu-guest-agent did not provide usr/sbin/qemu-ga"
find_agent_lib() {
  local d
  for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64; do
    if [[ -e "$AGENTROOT/$d/$1" ]]; then printf '%s\n' "$AGENTROOT/$d/$1"; return 0; fi
  done
  return 1
}
declare -A AGENT_SEEN=()
AGENT_QUEUE=("$QGA")
mkdir -p "$INITRAMFS/lib/x86_64-linux-gnu" "$INITRAMFS/lib64"
while [[ ${#AGENT_QUEUE[@]} -gt 0 ]]; do
  elf=${AGENT_QUEUE[0]}
  AGENT_QUEUE=("${AGENT_QUEUE[@]:1}")
  while IFS= read -r need; do
    [[ -n "$need" && -z "${AGENT_SEEN[$need]:-}" ]] || continue
    AGENT_SEEN[$need]=1
    lib=$(find_agent_lib "$need") || die "qemu-ga needs $need, which none of: $AGENT_PKGS provides"
    cp -L "$lib" "$INITRAMFS/lib/x86_64-linux-gnu/$need"
    AGENT_QUEUE+=("$lib")
  done < <(readelf -d "$elf" | awk '/\(NEEDED\)/ { gsub(/[][]/, "", $5); print $5 }')
done
LOADER=$(find_agent_lib ld-linux-x86-64.so.2) || die "libc6 did not provide ld-linux-x86-64.so.2"
cp -L "$LOADER" "$INITRAMFS/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -sfn /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$INITRAMFS/lib64/ld-linux-x86-64.so.2"
mkdir -p "$INITRAMFS/usr/sbin"
cp "$QGA" "$INITRAMFS/usr/sbin/qemu-ga"
chmod 0755 "$INITRAMFS/usr/sbin/qemu-ga"
log "qemu-ga with ${#AGENT_SEEN[@]} libraries ($(du -sk "$INITRAMFS/lib/x86_64-linux-gnu" | cut -f1) KiB)"

# qemu-ga's guest-shutdown runs /sbin/shutdown -P|-H|-r +0 <message> with stdio on /dev/null
# (busybox has no shutdown applet): a marker on the console, then power off, halt or reboot.
rm -f "$INITRAMFS/sbin/shutdown"
cat >"$INITRAMFS/sbin/shutdown" <<'EOF'
#!/bin/sh
echo "TESTGUEST_AGENT_SHUTDOWN $1" >/dev/console 2>/dev/null
sync
case "$1" in
  -r) reboot -f ;;
  -H) halt -f ;;
  *) poweroff -f ;;
esac
EOF
chmod 0755 "$INITRAMFS/sbin/shutdown"
# guest-get-osinfo reads /etc/os-release
cat >"$INITRAMFS/etc/os-release" <<'EOF'
NAME="QEMU Manager test guest"
ID=testguest
VERSION_ID=1
PRETTY_NAME="QEMU Manager test guest 1"
EOF

cat >"$INITRAMFS/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# Run by acpid when the ACPI power button is pressed (QMP system_powerdown).
echo TESTGUEST_POWEROFF >/dev/console 2>/dev/null
sync
poweroff -f
EOF
chmod 0755 "$INITRAMFS/etc/acpi/PWRF/00000080"

mkdir -p "$INITRAMFS/etc/testguest" "$INITRAMFS/mnt"
# NoCloud meta-data (YAML "key: value" lines or a JSON object): prints the value of -v key=...
cat >"$INITRAMFS/etc/testguest/meta-data.awk" <<'EOF'
{
  sub(/\r$/, "")
  line = $0
  pat = "(^|[{,])[ \t]*[\"']?" key "[\"']?[ \t]*:[ \t]*"
  if (match(line, pat)) {
    v = substr(line, RSTART + RLENGTH)
    if (match(v, /^"[^"]*"/) || match(v, /^'[^']*'/)) {
      v = substr(v, 2, RLENGTH - 2)
    } else {
      sub(/[ \t]+#.*$/, "", v)
      sub(/[ \t]*[,}].*$/, "", v)
      sub(/[ \t]+$/, "", v)
    }
    print v
    exit
  }
}
EOF
# #cloud-config user-data: prints the items of the top-level `runcmd:` block sequence, one
# shell line each. A plain or quoted string item is the line; a flow list item ([a, b]) is
# joined with spaces; block scalars (| or >) are skipped with a note on stderr. Nothing when
# the document does not start with #cloud-config.
cat >"$INITRAMFS/etc/testguest/runcmd.awk" <<'EOF'
function unquote(s,   c) {
  sub(/^[ \t]+/, "", s)
  sub(/[ \t]+$/, "", s)
  c = substr(s, 1, 1)
  if (c == "\"" && length(s) >= 2 && substr(s, length(s), 1) == "\"") {
    s = substr(s, 2, length(s) - 2)
    gsub(/\\"/, "\"", s)
    gsub(/\\\\/, "\\", s)
  } else if (c == "'" && length(s) >= 2 && substr(s, length(s), 1) == "'") {
    s = substr(s, 2, length(s) - 2)
    gsub(/''/, "'", s)
  } else {
    sub(/[ \t]+#.*$/, "", s)
  }
  return s
}
{ sub(/\r$/, "") }
NR == 1 && $0 !~ /^#cloud-config[ \t]*$/ { exit }
/^runcmd:[ \t]*(#.*)?$/ { inlist = 1; next }
inlist && /^[^ \t#-]/ { inlist = 0 }
inlist {
  line = $0
  if (line ~ /^[ \t]*(#.*)?$/) next
  if (line !~ /^[ \t]*-([ \t]|$)/) next
  sub(/^[ \t]*-[ \t]*/, "", line)
  if (line ~ /^[|>]/) {
    print "testguest: runcmd: block scalar items are not supported" > "/dev/stderr"
    next
  }
  if (line ~ /^\[.*\][ \t]*$/) {
    sub(/^\[/, "", line)
    sub(/\][ \t]*$/, "", line)
    n = split(line, parts, ",")
    out = ""
    for (i = 1; i <= n; i++) out = out (i > 1 ? " " : "") unquote(parts[i])
    print out
    next
  }
  print unquote(line)
}
EOF

# Networks: udhcpc's event script. On a lease it sets the address and the default route (the
# first NIC to get one keeps the route) and prints `TESTGUEST IP <ifname> <ip>` on serial and VGA.
cat >"$INITRAMFS/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface" 2>/dev/null
    ip link set "$interface" up 2>/dev/null
    ;;
  bound|renew)
    # replace, never flush: a renewal of the same address must not drop the routes through it
    ip -4 addr show dev "$interface" | grep -q "inet $ip/" || ip -4 addr flush dev "$interface" 2>/dev/null
    ip addr replace "$ip/${mask:-24}" dev "$interface"
    # (busybox's `ip route show default` lists every route: look for the default line itself)
    if [ -n "$router" ] && ! ip route | grep -q '^default'; then
      ip route add default via "${router%% *}" dev "$interface" 2>/dev/null
    fi
    if [ "$1" = bound ]; then
      echo "TESTGUEST IP $interface $ip" >/dev/console 2>/dev/null
      echo "TESTGUEST IP $interface $ip" >/dev/tty0 2>/dev/null
    fi
    ;;
esac
exit 0
EOF
chmod 0755 "$INITRAMFS/etc/udhcpc/default.script"
# Every NIC (also one hot-plugged later): a loop watching /sys/class/net starts udhcpc on each
# interface but lo that has none running (keyed by name and ifindex, so a NIC plugged again under
# an old name gets a new one); the udhcpc of an interface that went away is ended.
cat >"$INITRAMFS/etc/testguest/net-watch" <<'EOF'
#!/bin/sh
# Shell builtins only in the steady state (one `sleep` a second), so an idle guest stays idle.
mkdir -p /var/run/udhcpc
while :; do
  for d in /sys/class/net/*; do
    n=${d##*/}
    [ "$n" = lo ] && continue
    [ -e "$d/ifindex" ] || continue
    read -r idx <"$d/ifindex"
    p=/var/run/udhcpc/$n.$idx.pid
    if [ -f "$p" ]; then
      read -r pid <"$p"
      kill -0 "$pid" 2>/dev/null && continue
    fi
    ip link set "$n" up 2>/dev/null
    # in the foreground of a background job: it keeps asking (every 2 s) until it has a lease, then renews
    udhcpc -f -i "$n" -s /etc/udhcpc/default.script -t 5 -T 1 -A 2 -x hostname:"$(hostname)" >/dev/null 2>&1 &
    echo $! >"$p"
  done
  for p in /var/run/udhcpc/*.pid; do
    [ -f "$p" ] || continue
    k=${p##*/}
    k=${k%.pid}
    idx=
    [ -e "/sys/class/net/${k%.*}/ifindex" ] && read -r idx <"/sys/class/net/${k%.*}/ifindex"
    if [ "$idx" != "${k##*.}" ]; then
      read -r pid <"$p"
      kill "$pid" 2>/dev/null
      rm -f "$p"
    fi
  done
  sleep 1
done
EOF
chmod 0755 "$INITRAMFS/etc/testguest/net-watch"

cat >"$INITRAMFS/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root
PS1='testguest:$PWD# '
EOF

cat >"$INITRAMFS/init" <<'EOF'
#!/bin/sh
# PID 1 of the QEMU Manager test guest (generated by test/guest/build.sh).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root TERM=linux

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts 2>/dev/null
exec </dev/console >/dev/console 2>&1

# stdout is /dev/console = the serial port (last console= on the command line); tty0 is VGA.
say() {
  echo "$*"
  echo "$*" >/dev/tty0 2>/dev/null
}

for m in @MODULES@; do
  # efivarfs refuses to load without EFI runtime services: loaded below, under UEFI only
  [ "$m" = efivarfs ] && continue
  modprobe -q "$m" 2>/dev/null || [ -d "/sys/module/$m" ] || echo "testguest: modprobe $m failed"
done
say TESTGUEST_BOOT
# a hostname for the guest agent to report (a NoCloud seed's local-hostname replaces it below)
hostname testguest
ip link set lo up 2>/dev/null

# Let late block devices (SCSI/NVMe scans) show up: wait until /sys/block is stable.
prev=
stable=0
i=0
while [ $i -lt 40 ]; do
  cur=$(ls /sys/block 2>/dev/null | tr '\n' ' ')
  if [ "$cur" = "$prev" ]; then
    stable=$((stable + 1))
    [ $stable -ge 3 ] && break
  else
    stable=0
    prev=$cur
  fi
  sleep 0.2
  i=$((i + 1))
done

# Mark every writable disk whose sector 0 is blank or already carries our marker; leave other
# disks (and CD-ROMs, sr*) alone.
for sys in /sys/block/*; do
  n=${sys##*/}
  case "$n" in
    vd*|sd*|nvme*n*) ;;
    *) continue ;;
  esac
  dev=/dev/$n
  [ -b "$dev" ] || continue
  [ "$(cat "$sys/ro" 2>/dev/null)" = 1 ] && continue
  size=$(cat "$sys/size" 2>/dev/null)
  [ "${size:-0}" -gt 0 ] 2>/dev/null || continue
  nonzero=$(dd if="$dev" bs=512 count=1 2>/dev/null | tr -d '\000' | wc -c)
  head=$(dd if="$dev" bs=512 count=1 2>/dev/null | head -c 21)
  # A script disk: sector 0 starts with TESTGUEST_SCRIPT, the shell script follows from sector 1
  # (NUL-padded, at most 64 KiB). It runs after READY; its output goes to serial and VGA.
  if [ "$(dd if="$dev" bs=512 count=1 2>/dev/null | head -c 16)" = TESTGUEST_SCRIPT ]; then
    dd if="$dev" bs=512 skip=1 count=128 2>/dev/null | tr -d '\000' >"/tmp/script-$n.sh"
    say "TESTGUEST_SCRIPT_FOUND dev=$n"
    continue
  fi
  if [ "$nonzero" -eq 0 ] || [ "$head" = TESTGUEST_DISK_MARKER ]; then
    printf 'TESTGUEST_DISK_MARKER dev=%s\n' "$n" >/tmp/sector
    truncate -s 512 /tmp/sector
    if dd if=/tmp/sector of="$dev" bs=512 count=1 conv=notrunc,fsync 2>/dev/null; then
      sync
      say "TESTGUEST_DISK_WRITTEN dev=$n"
    else
      say "TESTGUEST_DISK_ERROR dev=$n"
    fi
  fi
done
sync

# TPM: QEMU describes it in ACPI (MSFT0101 for tpm-crb, PNP0C31 for tpm-tis); the drivers
# (tpm_crb, tpm_tis) are built into Debian's kernel or loaded above. Wait briefly for tpm0 only
# when such a device is there, so VMs without a TPM boot as fast as before.
tpm_acpi=
for d in /sys/bus/acpi/devices/MSFT0101:* /sys/bus/acpi/devices/PNP0C31:*; do
  [ -e "$d" ] && tpm_acpi=1
done
i=0
while [ -n "$tpm_acpi" ] && [ ! -c /dev/tpm0 ] && [ $i -lt 25 ]; do
  sleep 0.2
  i=$((i + 1))
done
if [ -c /dev/tpm0 ]; then
  say "TESTGUEST TPM $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null || echo unknown)"
elif [ -n "$tpm_acpi" ]; then
  say "TESTGUEST_TPM_ERROR the firmware describes a TPM but /dev/tpm0 did not appear"
fi

# UEFI: the firmware's variables through efivarfs. Each boot creates one new non-volatile
# variable QemuManagerTestBoot<n> of our own vendor GUID (n = 1 + the number already there) and
# prints TESTGUEST EFIVAR <n>: a second boot prints 2 only if the VM's variable store kept the
# first. (New variables are created instead of rewriting one: efivarfs makes existing variables
# of unknown GUIDs immutable, and busybox has no chattr.)
if [ -d /sys/firmware/efi ]; then
  say "TESTGUEST UEFI"
  efivars=/sys/firmware/efi/efivars
  if ! grep -q " $efivars efivarfs " /proc/mounts; then
    modprobe -q efivarfs 2>/dev/null
    mount -t efivarfs efivarfs "$efivars" 2>/dev/null
  fi
  if grep -q " $efivars efivarfs " /proc/mounts; then
    # SecureBoot (EFI global variable GUID): 4 attribute bytes, then one byte 0 or 1.
    sb=$(tail -c 1 "$efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c" 2>/dev/null | od -An -tu1 | tr -d ' \n')
    say "TESTGUEST SECUREBOOT ${sb:-0}"
    guid=5f0a3c1e-7b2d-4e8a-9c46-1d2e3f4a5b6c
    n=1
    while [ -e "$efivars/QemuManagerTestBoot$n-$guid" ] && [ $n -lt 1000 ]; do n=$((n + 1)); done
    # attributes NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS (little-endian), then the count
    printf '\007\000\000\000%s' "$n" >/tmp/efivar
    if dd if=/tmp/efivar of="$efivars/QemuManagerTestBoot$n-$guid" bs=512 conv=notrunc 2>/dev/null \
        && [ -e "$efivars/QemuManagerTestBoot$n-$guid" ]; then
      say "TESTGUEST EFIVAR $n"
    else
      say "TESTGUEST_EFIVAR_ERROR could not create QemuManagerTestBoot$n-$guid"
    fi
  else
    say "TESTGUEST_EFIVAR_ERROR efivarfs could not be mounted"
  fi
fi

# NoCloud seed: a CD-ROM whose ISO 9660 volume id is "cidata" (any case). Print its
# local-hostname (and instance-id) from meta-data, set the hostname, and queue the plain string
# items of user-data's #cloud-config runcmd: list; they run after READY (see /tmp/run-scripts).
for sys in /sys/block/sr*; do
  [ -e "$sys" ] || continue
  n=${sys##*/}
  dev=/dev/$n
  [ -b "$dev" ] || continue
  # the primary volume descriptor is sector 16 (2048-byte sectors); the volume id is bytes 40-71
  label=$(dd if="$dev" bs=2048 skip=16 count=1 2>/dev/null | dd bs=1 skip=40 count=32 2>/dev/null \
    | tr -d ' \000' | tr 'A-Z' 'a-z')
  [ "$label" = cidata ] || continue
  mkdir -p /mnt/cidata
  if ! mount -t iso9660 -o ro "$dev" /mnt/cidata 2>/dev/null; then
    say "TESTGUEST_CIDATA_ERROR dev=$n cannot be mounted"
    continue
  fi
  host=
  iid=
  if [ -f /mnt/cidata/meta-data ]; then
    host=$(awk -v key=local-hostname -f /etc/testguest/meta-data.awk /mnt/cidata/meta-data)
    iid=$(awk -v key=instance-id -f /etc/testguest/meta-data.awk /mnt/cidata/meta-data)
  else
    say "TESTGUEST_CIDATA_ERROR dev=$n has no meta-data"
  fi
  say "TESTGUEST CIDATA${host:+ $host}"
  [ -n "$iid" ] && say "TESTGUEST INSTANCE $iid"
  [ -n "$host" ] && hostname "$host"
  if [ -f /mnt/cidata/user-data ]; then
    awk -f /etc/testguest/runcmd.awk /mnt/cidata/user-data >/tmp/runcmd.sh
  fi
  break
done

# Power button: acpid reads the input device of the ACPI button and runs
# /etc/acpi/PWRF/00000080. It only opens /dev/input/event* when it starts, so (re)start it
# until it holds the power button's event device.
power_events() {
  for e in /sys/class/input/event*; do
    [ -e "$e/device/name" ] || continue
    [ "$(cat "$e/device/name")" = "Power Button" ] && echo "/dev/input/${e##*/}"
  done
}
holds_power_button() {
  for fd in /proc/$1/fd/*; do
    l=$(readlink "$fd" 2>/dev/null) || continue
    for ev in $2; do
      [ "$l" = "$ev" ] && return 0
    done
  done
  return 1
}
acpid_ok=0
attempt=0
while [ $attempt -lt 5 ] && [ $acpid_ok -eq 0 ]; do
  attempt=$((attempt + 1))
  events=
  i=0
  while [ $i -lt 25 ]; do
    events=$(power_events)
    [ -n "$events" ] && break
    sleep 0.2
    i=$((i + 1))
  done
  [ -n "$events" ] || break
  acpid -f -c /etc/acpi -l /var/log/acpid.log -p /var/run/acpid.pid &
  apid=$!
  i=0
  while [ $i -lt 50 ]; do
    if holds_power_button "$apid" "$events"; then
      acpid_ok=1
      break
    fi
    kill -0 "$apid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
  done
  if [ $acpid_ok -eq 0 ]; then
    kill "$apid" 2>/dev/null
    sleep 0.2
  fi
done
[ $acpid_ok -eq 1 ] || say "TESTGUEST_WARNING power button not available (no ACPI button or acpid failed)"

# Banner on the VGA console (reverse video: plenty of non-black pixels for screenshot tests).
{
  printf '\n\033[7m'
  printf '%-80s\n' '' '' \
    '   QEMU MANAGER TEST GUEST READY' \
    '' \
    '   ####   #####    ###    ####   #   #' \
    '   #   #  #       #   #   #   #   # #' \
    '   ####   ####    #####   #   #    #' \
    '   #  #   #       #   #   #   #    #' \
    '   #   #  #####   #   #   ####     #' \
    '' \
    "   kernel $(uname -r) - a shell is running on this console (tty1)" \
    '' ''
  printf '\033[0m\n'
} >/dev/tty0 2>/dev/null
echo TESTGUEST_READY >/dev/tty0 2>/dev/null
echo TESTGUEST_READY

# Networks: the HTTP marker (port 80, naming this VM by its first NIC's MAC) and the echo (port 7).
mac0=
for d in /sys/class/net/*; do
  [ "${d##*/}" = lo ] && continue
  mac0=$(cat "$d/address" 2>/dev/null)
  break
done
echo "TESTGUEST_HTTP ${mac0:-none}" >/www/index.html

# cloud-init runcmd lines (before the shells start, so their output lines are not mixed with a
# prompt; a runcmd that never ends keeps the shells from starting), then script disks, run
# under busybox init (a job left in the background here would not survive it).
{
  echo '#!/bin/sh'
  echo '[ -f /tmp/runcmd.sh ] || exit 0'
  echo 'sh /tmp/runcmd.sh 2>&1 | while IFS= read -r line; do echo "$line"; echo "$line" >/dev/tty0; done'
  echo 'echo TESTGUEST RUNCMD_DONE; echo TESTGUEST RUNCMD_DONE >/dev/tty0'
} >/tmp/run-runcmd
chmod +x /tmp/run-runcmd
{
  echo '#!/bin/sh'
  echo 'for script in /tmp/script-*.sh; do'
  echo '  [ -f "$script" ] || continue'
  echo '  sh "$script" 2>&1 | while IFS= read -r line; do echo "$line"; echo "$line" >/dev/tty0; done'
  echo '  echo TESTGUEST_SCRIPT_DONE; echo TESTGUEST_SCRIPT_DONE >/dev/tty0'
  echo 'done'
} >/tmp/run-scripts
chmod +x /tmp/run-scripts
# The guest agent on the virtio-serial port org.qemu.guest_agent.0 (no udev: the
# /dev/virtio-ports/ link is made here from sysfs), respawned by init when it exits.
{
  echo '#!/bin/sh'
  echo 'port='
  echo 'i=0'
  echo 'while [ -z "$port" ] && [ $i -lt 25 ]; do'
  echo '  for p in /sys/class/virtio-ports/*; do'
  echo '    [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}'
  echo '  done'
  echo '  [ -n "$port" ] || { sleep 0.2; i=$((i + 1)); }'
  echo 'done'
  echo '[ -n "$port" ] || { echo TESTGUEST_AGENT_ERROR no org.qemu.guest_agent.0 port; exec sleep 2147483647; }'
  echo 'mkdir -p /dev/virtio-ports /var/run'
  echo 'ln -sfn "$port" /dev/virtio-ports/org.qemu.guest_agent.0'
  echo 'echo TESTGUEST AGENT; echo TESTGUEST AGENT >/dev/tty0'
  echo 'exec /usr/sbin/qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -t /var/run -f /var/run/qemu-ga.pid'
} >/tmp/run-agent
chmod +x /tmp/run-agent

# Shells on tty1 (VGA; keystrokes from VNC land here) and on the serial console, respawned by
# busybox init, which also reaps orphans. PID 1 never exits.
{
  echo '::wait:/tmp/run-runcmd'
  echo '::once:/tmp/run-scripts'
  echo '::respawn:/tmp/run-agent'
  echo '::respawn:/etc/testguest/net-watch'
  echo '::respawn:/bin/busybox httpd -f -p 80 -h /www'
  echo '::respawn:/bin/busybox nc -ll -p 7 -e /bin/cat'
  echo 'tty1::respawn:-/bin/sh'
  if stty -F /dev/ttyS0 >/dev/null 2>&1; then echo 'ttyS0::respawn:-/bin/sh'; fi
} >/etc/inittab
exec /sbin/init
# Only reached if busybox init could not be executed.
while :; do sleep 3600; done
EOF
sed -i "s/@MODULES@/$MODULES/" "$INITRAMFS/init"
chmod 0755 "$INITRAMFS/init"

# ---------------------------------------------------------------------------------------------
# Pack the initramfs (newc, fixed mtimes/owners/inodes, gzip -9n)
# ---------------------------------------------------------------------------------------------
ISODIR=$WORK/iso
mkdir -p "$ISODIR/isolinux"
find "$INITRAMFS" -exec touch -h -d "@$EPOCH" {} +
(
  cd "$INITRAMFS"
  find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort \
    | "$BB" cpio -o -H newc -R 0:0 --renumber-inodes --ignore-devno
) | gzip -9n >"$ISODIR/isolinux/initrd.gz"
log "initramfs $(du -k "$ISODIR/isolinux/initrd.gz" | cut -f1) KiB"

# ---------------------------------------------------------------------------------------------
# ISO
# ---------------------------------------------------------------------------------------------
cp "$VMLINUZ" "$ISODIR/isolinux/vmlinuz"
cp "$ISOLINUX_BIN" "$ISODIR/isolinux/isolinux.bin"
cp "$LDLINUX" "$ISODIR/isolinux/ldlinux.c32"
cat >"$ISODIR/isolinux/isolinux.cfg" <<EOF
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT testguest
LABEL testguest
  KERNEL /isolinux/vmlinuz
  INITRD /isolinux/initrd.gz
  APPEND $KERNEL_CMDLINE
EOF
find "$ISODIR" -exec touch -h -d "@$EPOCH" {} +

# UEFI: a standalone GRUB (EFI/BOOT/BOOTX64.EFI, the removable-media path) in a small FAT image
# that becomes both the El Torito EFI boot image (CD) and an appended EFI System Partition
# (disk). Its embedded config finds the ISO 9660 file system by the kernel's path and boots the
# same kernel, initramfs and command line as isolinux.
log "building the EFI System Partition"
cat >"$WORK/grub-early.cfg" <<EOF
set timeout=0
search --no-floppy --set=root --file /isolinux/vmlinuz
linux /isolinux/vmlinuz $KERNEL_CMDLINE
initrd /isolinux/initrd.gz
boot
EOF
run "$GRUB_MKIMAGE" -O x86_64-efi -d "$GRUB_EFI_MODS" -p /boot/grub -c "$WORK/grub-early.cfg" \
  -o "$WORK/BOOTX64.EFI" \
  part_gpt part_msdos iso9660 fat search search_fs_file linux normal configfile echo efi_gop \
  >&2 || die "grub-mkimage failed"
ESP=$WORK/efi.img
truncate -s 4M "$ESP"
# fixed volume serial and timestamps keep the image reproducible
MTOOLS_SKIP_CHECK=1 run "$MFORMAT" -i "$ESP" -N 7e570001 -v TESTGUESTEFI :: >&2 || die "mformat failed"
MTOOLS_SKIP_CHECK=1 run "$MMD" -i "$ESP" ::/EFI ::/EFI/BOOT >&2 || die "mmd failed"
touch -d "@$EPOCH" "$WORK/BOOTX64.EFI"
MTOOLS_SKIP_CHECK=1 run "$MCOPY" -m -i "$ESP" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI >&2 \
  || die "mcopy failed"

log "writing ISO"
TMP_ISO=$(mktemp "$OUT_DIR/.$(basename -- "$OUTPUT").tmp.XXXXXX")
run xorriso -as mkisofs -quiet -V TESTGUEST -r -J \
  -isohybrid-mbr "$ISOHDPFX" \
  -c isolinux/boot.cat -b isolinux/isolinux.bin \
  -no-emul-boot -boot-load-size 4 -boot-info-table \
  -eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot \
  -isohybrid-gpt-basdat -append_partition 2 0xef "$ESP" \
  -o "$TMP_ISO" "$ISODIR" >&2 2>"$WORK/xorriso.log" \
  || { cat "$WORK/xorriso.log" >&2; die "xorriso failed"; }
chmod 0644 "$TMP_ISO"
mv -f -- "$TMP_ISO" "$OUTPUT"
TMP_ISO=""
log "wrote $OUTPUT ($(du -k "$OUTPUT" | cut -f1) KiB, kernel $KVER) in $((SECONDS - START_SECONDS)) s"
