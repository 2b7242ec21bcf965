#!/usr/bin/env bash
# Builds pxelab's test node image from Debian packages: a stock Debian kernel (vmlinuz)
# and an initramfs holding busybox-static, dropbear (+ its libraries), the virtio NIC
# modules and an /init that behaves like Alpine's initramfs + tiny-cloud + a k3s
# stand-in (scripts/node-init/). Used by tests/qemu_*.rs.
#
#   scripts/build-node-image.sh [--arch amd64|arm64] [OUT_DIR]
#
# OUT_DIR defaults to $PXELAB_NODE_IMAGE_DIR, else target/node-image (target/node-image-arm64
# for arm64). Produces OUT_DIR/vmlinuz and OUT_DIR/initramfs (gzip'd newc cpio) and prints
# OUT_DIR. Idempotent: .deb files are cached in OUT_DIR/debs and the image is rebuilt only
# when the inputs (this script, scripts/node-init/*, the package versions) change.
# --arch arm64 builds the same image from Debian's arm64 packages (tests/qemu_arm64.rs): the
# kernel is inflated to the arm64 `Image` (its header says `ARM\x64` at 56, as iPXE's EFI
# loader and `pxelab check` read it), and, since nothing arm64 runs on the build host, the
# applet list and depmod come from the amd64 busybox-static of the same version and the
# libraries are found by their ELF NEEDED entries (readelf), for both architectures.
# Needs: apt-get (download only, no install, no root; arm64 needs `dpkg --add-architecture
# arm64` and an apt-get update first), dpkg-deb, gzip, sha256sum, readelf (binutils),
# python3 (writes the cpio archive). Set PXELAB_NODE_KERNEL_PKG to pin a kernel package.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
arch=amd64
if [ "${1:-}" = --arch ]; then
    arch="${2:-}"
    shift 2 || true
fi
case "$arch" in
    amd64) triplet=x86_64-linux-gnu ld_name=ld-linux-x86-64.so.2 ld_link=lib64 default_out=node-image ;;
    arm64) triplet=aarch64-linux-gnu ld_name=ld-linux-aarch64.so.1 ld_link=lib default_out=node-image-arm64 ;;
    *) echo "build-node-image: --arch amd64 or arm64, not '$arch'" >&2; exit 2 ;;
esac
if [ "$arch" = amd64 ]; then
    out="${1:-${PXELAB_NODE_IMAGE_DIR:-$repo/target/$default_out}}"
else
    out="${1:-$repo/target/$default_out}"
fi
mkdir -p "$out/debs"
out="$(cd "$out" && pwd)"

log() { echo "build-node-image: $*" >&2; }

# One build at a time per output folder (test binaries of several checkouts may share it).
exec 9> "$out/.lock"
flock -w 900 9 || { log "another build holds $out/.lock"; exit 1; }

kernel_pkg="${PXELAB_NODE_KERNEL_PKG:-}"
if [ -z "$kernel_pkg" ]; then
    kernel_pkg="$(apt-cache depends "linux-image-$arch:$arch" 2> /dev/null | awk '/Depends: linux-image-[0-9]/ { sub(/:.*/, "", $2); print $2; exit }')"
fi
[ -n "$kernel_pkg" ] || { log "cannot resolve linux-image-$arch:$arch (apt-get update? for arm64: dpkg --add-architecture arm64 first)"; exit 1; }
pkgs=("$kernel_pkg" busybox-static dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g)
# Run on the build host: busybox (applet list, depmod) of the host's architecture.
host_arch="$(dpkg --print-architecture)"
host_pkgs=()
[ "$arch" = "$host_arch" ] || host_pkgs=(busybox-static)

# Package versions are part of the cache key.
candidate() { apt-cache policy "$1" 2> /dev/null | awk '/Candidate:/ { print $2; exit }'; }
versions="$arch "
for p in "${pkgs[@]}"; do
    v="$(candidate "$p:$arch")"
    [ -n "$v" ] && [ "$v" != "(none)" ] || { log "package $p:$arch not available"; exit 1; }
    versions+="$p=$v "
done
for p in "${host_pkgs[@]}"; do
    versions+="host:$p=$(candidate "$p:$host_arch") "
done
key="$( { echo "$versions"; cat "$here/build-node-image.sh"; cat "$here"/node-init/*; } | sha256sum | cut -d' ' -f1)"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs" ] && [ "$(cat "$out/key" 2> /dev/null)" = "$key" ]; then
    log "up to date in $out"
    echo "$out"
    exit 0
fi

# ---- download (cached) ----
# fetch DIR PKG ARCH: the candidate .deb of PKG:ARCH in DIR, unless it is there already.
fetch() {
    local d="$1" p="$2" a="$3" v
    mkdir -p "$d"
    v="$(candidate "$p:$a")"
    if ! ls "$d/${p}_"*.deb > /dev/null 2>&1 || ! grep -qx "$p=$v" "$d/versions" 2> /dev/null; then
        rm -f "$d/${p}_"*.deb
        log "downloading $p:$a $v"
        (cd "$d" && apt-get download -q "$p:$a=$v" > /dev/null 2>&1) || (cd "$d" && apt-get download "$p:$a=$v")
        grep -v "^$p=" "$d/versions" > "$d/versions.new" 2> /dev/null || true
        echo "$p=$v" >> "$d/versions.new"
        mv "$d/versions.new" "$d/versions"
    fi
}
for p in "${pkgs[@]}"; do fetch "$out/debs" "$p" "$arch"; done
for p in "${host_pkgs[@]}"; do fetch "$out/debs/host" "$p" "$host_arch"; done

work="$(mktemp -d "$out/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
x="$work/x"    # extracted packages
r="$work/root" # initramfs root
mkdir -p "$x" "$r"
for p in "${pkgs[@]}"; do
    dpkg-deb -x "$(ls "$out/debs/${p}_"*.deb | head -n 1)" "$x"
done
bb="$x/bin/busybox" # the busybox that runs here
if [ ${#host_pkgs[@]} -gt 0 ]; then
    dpkg-deb -x "$(ls "$out/debs/host/busybox-static_"*.deb | head -n 1)" "$work/host"
    bb="$work/host/bin/busybox"
fi

# ---- kernel and modules ----
kver="$(ls "$x/lib/modules" | head -n 1)"
if [ "$arch" = arm64 ]; then
    # Debian's arm64 vmlinuz is a gzip'd Image: iPXE's EFI loader wants the Image itself.
    if gzip -t "$x/boot/vmlinuz-$kver" 2> /dev/null; then
        gzip -dc "$x/boot/vmlinuz-$kver" > "$work/vmlinuz"
    else
        cp "$x/boot/vmlinuz-$kver" "$work/vmlinuz"
    fi
    [ "$(dd if="$work/vmlinuz" bs=1 skip=56 count=4 2> /dev/null | od -An -tx1 | tr -d ' \n')" = 41524d64 ] ||
        { log "vmlinuz-$kver is not an arm64 Image (no ARM\\x64 at 56)"; exit 1; }
else
    cp "$x/boot/vmlinuz-$kver" "$work/vmlinuz"
fi
"$bb" depmod -b "$x" "$kver"
wanted=(virtio_pci virtio_net)
# load order: each module after its dependencies (modules.dep lists direct and indirect deps)
order="$(awk -v want="${wanted[*]}" '
    BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) want_[w[i]] = 1 }
    {
        mod = $1; sub(/:$/, "", mod)
        name = mod; sub(/.*\//, "", name); sub(/\.ko.*$/, "", name); gsub(/-/, "_", name)
        if (name in want_) {
            for (i = NF; i >= 2; i--) if (!($i in seen)) { seen[$i] = 1; list[++k] = $i }
            if (!(mod in seen)) { seen[mod] = 1; list[++k] = mod }
        }
    }
    END { for (i = 1; i <= k; i++) print list[i] }' "$x/lib/modules/$kver/modules.dep")"
# virtio_pci must come before virtio_net binds: keep the wanted order
order="$(echo "$order" | awk '/virtio_net|net_failover|failover/ { late[++m] = $0; next } { print } END { for (i = 1; i <= m; i++) print late[i] }')"
[ -n "$order" ] || { log "no virtio modules found in $kernel_pkg"; exit 1; }
mkdir -p "$r/lib/modules/$kver" "$r/etc"
while read -r m; do
    mkdir -p "$r/lib/modules/$kver/$(dirname "$m")"
    cp "$x/lib/modules/$kver/$m" "$r/lib/modules/$kver/$m"
done <<< "$order"
cp "$x/lib/modules/$kver/modules.order" "$x/lib/modules/$kver/modules.builtin" "$r/lib/modules/$kver/" 2> /dev/null || true
"$bb" depmod -b "$r" "$kver"
echo "$order" > "$r/etc/pxelab-modules"
log "kernel $kver, modules: $(echo "$order" | sed 's#.*/##' | tr '\n' ' ')"

# ---- busybox ----
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,"$ld_link","lib/$triplet",proc,sys,dev,run,tmp,root,home,var/log,var/lib/cloud,etc/init.d,etc/conf.d,usr/share/udhcpc,lib/pxelab-node}
cp "$x/bin/busybox" "$r/bin/busybox"
for a in $("$bb" --list-full); do
    [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
done

# ---- dropbear + the libraries it needs: the closure of their ELF NEEDED entries ----
cp "$x/usr/sbin/dropbear" "$r/usr/sbin/"
cp "$x/usr/bin/dropbearkey" "$x/usr/bin/dropbearconvert" "$r/usr/bin/"
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'; }
todo=(usr/sbin/dropbear usr/bin/dropbearkey usr/bin/dropbearconvert)
while [ ${#todo[@]} -gt 0 ]; do
    f="${todo[0]}"
    todo=("${todo[@]:1}")
    for lib in $(needed "$r/$f"); do
        [ -e "$r/lib/$triplet/$lib" ] && continue
        src=""
        for d in "$x/lib/$triplet" "$x/usr/lib/$triplet"; do
            [ -e "$d/$lib" ] && { src="$d/$lib"; break; }
        done
        [ -n "$src" ] || { log "$f needs $lib, in none of the packages"; exit 1; }
        cp -L "$src" "$r/lib/$triplet/$lib"
        todo+=("lib/$triplet/$lib")
    done
done
[ -e "$r/lib/$triplet/$ld_name" ] || cp -L "$x/lib/$triplet/$ld_name" "$r/lib/$triplet/$ld_name"
ln -sf "/lib/$triplet/$ld_name" "$r/$ld_link/$ld_name"
interp="$(readelf -l "$r/usr/sbin/dropbear" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')"
[ -e "$r$interp" ] || [ -e "$r$(readlink "$r$interp")" ] || { log "dropbear's loader $interp is not in the image"; exit 1; }

# ---- accounts and config dropbear needs (field notes §8) ----
cat > "$r/etc/passwd" << 'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$r/etc/shadow" << 'EOF'
root:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
cat > "$r/etc/group" << 'EOF'
root:x:0:
wheel:x:10:
nogroup:x:65534:
EOF
chmod 600 "$r/etc/shadow"
printf '/bin/sh\n/bin/ash\n' > "$r/etc/shells"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' > "$r/etc/nsswitch.conf"
printf '127.0.0.1\tlocalhost\n' > "$r/etc/hosts"
echo localhost > "$r/etc/hostname"
printf 'NAME="pxelab test node (Debian kernel, busybox, dropbear)"\nID=pxelab-node\nVERSION_ID=0.1\n' > "$r/etc/os-release"

# ---- pxelab's scripts ----
n="$here/node-init"
install -m 755 "$n/init" "$r/init"
install -m 644 "$n/lib.sh" "$n/yflat.awk" "$r/lib/pxelab-node/"
install -m 755 "$n/tiny-cloud" "$r/sbin/tiny-cloud"
install -m 755 "$n/k3s" "$r/usr/bin/k3s"
install -m 755 "$n/sqlite3" "$r/usr/bin/sqlite3"
install -m 755 "$n/k3s.initd" "$r/etc/init.d/k3s"
install -m 755 "$n/dbus.initd" "$r/etc/init.d/dbus"
install -m 755 "$n/cgroups.initd" "$r/etc/init.d/cgroups"
install -m 755 "$n/rc-service" "$r/sbin/rc-service"
install -m 755 "$n/rc-update" "$r/sbin/rc-update"
install -m 755 "$n/apk" "$r/sbin/apk"
install -m 755 "$n/udhcpc.script" "$r/usr/share/udhcpc/default.script"
printf 'K3S_EXEC="server"\nK3S_OPTS=""\n' > "$r/etc/conf.d/k3s"

# ---- archive: newc cpio, every file owned by root ----
(cd "$r" && find . -mindepth 1 | LC_ALL=C sort) > "$work/list"
python3 - "$r" "$work/list" "$work/initramfs.cpio" << 'PY'
import os, stat, sys
root, listing, dest = sys.argv[1], sys.argv[2], sys.argv[3]
ino = 1
def hdr(name, mode, size, nlink, rdev=(0, 0)):
    global ino
    ino += 1
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(name_b), 0]
    h = b"070701" + b"".join(b"%08X" % f for f in fields) + name_b
    return h + b"\0" * ((4 - len(h) % 4) % 4)
with open(dest, "wb") as out:
    for line in open(listing):
        rel = line.rstrip("\n")[2:]
        p = os.path.join(root, rel)
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            data = os.readlink(p).encode()
        elif stat.S_ISREG(st.st_mode):
            data = open(p, "rb").read()
        else:
            data = b""
        nlink = 2 if stat.S_ISDIR(st.st_mode) else 1
        out.write(hdr(rel, st.st_mode, len(data), nlink))
        out.write(data + b"\0" * ((4 - len(data) % 4) % 4))
    # /dev/console so the kernel can open it before devtmpfs is mounted
    out.write(hdr("dev/console", stat.S_IFCHR | 0o600, 0, 1, (5, 1)))
    out.write(hdr("TRAILER!!!", 0, 0, 1))
PY
gzip -9n < "$work/initramfs.cpio" > "$work/initramfs"

mv "$work/vmlinuz" "$out/vmlinuz"
mv "$work/initramfs" "$out/initramfs"
echo "$key" > "$out/key"
log "built $out/vmlinuz ($(stat -c %s "$out/vmlinuz") B), $out/initramfs ($(stat -c %s "$out/initramfs") B)"
echo "$out"
