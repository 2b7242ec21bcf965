#!/usr/bin/env bash
# Fetches iPXE's arm64 EFI binary (`ipxe-arm64.efi`) for tests/qemu_arm64.rs.
#
# Why: Debian 12's `ipxe` package builds no arm64 binary; Debian 13's (trixie) ships
# /usr/lib/ipxe/ipxe-arm64.efi in the same architecture-`all` package. It is taken from
# that .deb, not installed: the host's own ipxe (x86 binaries, used by the other tests)
# stays as it is.
#
#   scripts/fetch-ipxe-arm64.sh [OUT_DIR]
#
# OUT_DIR defaults to target/ipxe-arm64. Prints the binary's path (OUT_DIR/ipxe-arm64.efi).
# The pinned pool file is downloaded and checked against its pinned SHA-256 (Debian's
# Packages index of trixie gives both). When the pool no longer has it (a newer trixie
# upload replaced it), apt-get resolves the current one from trixie's signed index in a
# private apt state under OUT_DIR (the host's apt sources and state are not touched) and
# checks the .deb against that index's SHA-256. Cached: nothing is downloaded when
# OUT_DIR holds the binary of the .deb recorded beside it.
# Needs: curl, sha256sum, dpkg-deb, apt-get (for the fallback only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
out="${1:-$repo/target/ipxe-arm64}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
mirror="http://deb.debian.org/debian"
pin_file="pool/main/i/ipxe/ipxe_1.21.1+git20250501.dad20602+dfsg-1_all.deb"
pin_sha256="eeaca79dbde0fb86c102bf1d362c6f6a67ed0ddab38b3dd12e1b332339f5dd99"

log() { echo "fetch-ipxe-arm64: $*" >&2; }

exec 9> "$out/.lock"
flock -w 300 9 || { log "another fetch holds $out/.lock"; exit 1; }

if [ -s "$out/ipxe-arm64.efi" ] && [ -s "$out/source" ]; then
    echo "$out/ipxe-arm64.efi"
    exit 0
fi

work="$(mktemp -d "$out/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# verify FILE SHA256: the .deb is the one the index names.
verify() {
    [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ] || { log "$1: SHA-256 is not $2"; return 1; }
}

deb="$work/ipxe.deb"
source=""
if curl -fsS --max-time 120 --retry 2 -o "$deb" "$mirror/$pin_file" 2> "$work/curl.err"; then
    verify "$deb" "$pin_sha256"
    source="$pin_file sha256:$pin_sha256 (pinned)"
else
    log "pinned $pin_file not fetched ($(tr '\n' ' ' < "$work/curl.err")); asking trixie's index"
    a="$work/apt"
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/parts"
    : > "$a/status"
    echo "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$a/sources.list"
    opts=(-o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=$a/parts"
        -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o "Dir::State::status=$a/status"
        -o "APT::Architectures::=amd64" -o "Acquire::Languages=none")
    timeout 600 apt-get "${opts[@]}" -qq update
    file="$(apt-cache "${opts[@]}" show ipxe | awk '/^Filename:/ { print $2; exit }')"
    sha="$(apt-cache "${opts[@]}" show ipxe | awk '/^SHA256:/ { print $2; exit }')"
    [ -n "$file" ] && [ -n "$sha" ] || { log "trixie's index names no ipxe"; exit 1; }
    curl -fsS --max-time 120 --retry 2 -o "$deb" "$mirror/$file"
    verify "$deb" "$sha"
    source="$file sha256:$sha (trixie's index)"
fi

dpkg-deb -x "$deb" "$work/x"
efi="$work/x/usr/lib/ipxe/ipxe-arm64.efi"
[ -s "$efi" ] || { log "the .deb has no usr/lib/ipxe/ipxe-arm64.efi"; exit 1; }
# A PE image for arm64: "MZ", then the PE header's machine field 0xaa64.
pe="$(od -An -tu4 -j 60 -N 4 "$efi" | tr -d ' ')"
[ "$(od -An -tx1 -j "$((pe + 4))" -N 2 "$efi" | tr -d ' \n')" = 64aa ] ||
    { log "ipxe-arm64.efi is not an arm64 PE image"; exit 1; }
mv "$efi" "$out/ipxe-arm64.efi"
echo "$source" > "$out/source"
log "ipxe-arm64.efi from $source"
echo "$out/ipxe-arm64.efi"
