//! Which Debian package each program the tests run comes from: the one table that
//! `.ci/run`'s `apt-get install` list, the skip messages ("install X to run this") and
//! tests/ci_packages.rs (which fails when a test needs a program missing here, or a
//! package here missing from `.ci/run`) all agree on.
//!
//! Checked on Debian 12 with `dpkg -S $(command -v PROGRAM)` (under usrmerge, ask for
//! `/bin/P` or `/sbin/P` when `/usr/...` is not found).

/// `(program, Debian package)`: every program a test requires or runs on the host.
/// Programs run inside the test VM (udhcpc, dropbear of the node image) come from the
/// image that scripts/build-node-image.sh builds, not from here; `udhcpc` is listed
/// because the DHCP tests run it as `busybox udhcpc` on the host.
pub const PROGRAMS: &[(&str, &str)] = &[
    // DHCP clients and servers.
    ("busybox", "busybox"),
    ("udhcpc", "busybox"),
    ("dhclient", "isc-dhcp-client"),
    ("perfdhcp", "kea-admin"),
    ("dnsmasq", "dnsmasq-base"),
    // TFTP clients and the reference server.
    ("tftp", "tftp-hpa"),
    ("atftp", "atftp"),
    ("in.tftpd", "tftpd-hpa"),
    // SSH.
    ("sshd", "openssh-server"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("ssh-keyscan", "openssh-client"),
    ("dropbear", "dropbear-bin"),
    ("dropbearkey", "dropbear-bin"),
    ("dropbearconvert", "dropbear-bin"),
    // VMs (the node image is built from downloaded .debs: apt-get download, dpkg-deb).
    ("qemu-system-x86_64", "qemu-system-x86"),
    // The arm64 UEFI VM (tests/qemu_arm64.rs); its image's libraries are found with
    // readelf, and `dpkg --print-foreign-architectures` tells whether arm64 packages can be had.
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("readelf", "binutils"),
    ("dpkg", "dpkg"),
    ("apt-get", "apt"),
    ("apt-cache", "apt"),
    ("dpkg-deb", "dpkg"),
    // Everything else.
    ("tmux", "tmux"),
    ("curl", "curl"),
    // dpkg -S names python3-minimal, which the python3 package pulls in.
    ("python3", "python3"),
    ("ip", "iproute2"),
    ("ss", "iproute2"),
    ("kill", "procps"),
    ("sysctl", "procps"),
    ("timeout", "coreutils"),
    ("env", "coreutils"),
    ("id", "coreutils"),
    ("sha256sum", "coreutils"),
    ("cat", "coreutils"),
    // The k3s token's CA hash, computed outside pxelab (tests/k3s_token.rs).
    ("openssl", "openssl"),
    ("sh", "dash"),
    ("bash", "bash"),
    ("gzip", "gzip"),
    // Modloops of both architectures for `check`'s architecture cases.
    ("mksquashfs", "squashfs-tools"),
    ("flock", "util-linux"),
    ("setpriv", "util-linux"),
    ("chown", "coreutils"),
    // `systemd-analyze verify` of contrib/systemd/pxelab.service.
    ("systemd-analyze", "systemd"),
    // RFC 3164 over UDP, as busybox `syslogd -R` sends it.
    ("logger", "bsdutils"),
];

/// Packages every Debian system (and container image) has: Essential, or `apt` itself,
/// which `.ci/run` needs to install the others. `.ci/run` does not list them.
/// (`procps` is "important" but missing from the Debian container images: not here.)
pub const BASE_PACKAGES: &[&str] = &[
    "apt",
    "bash",
    "bsdutils",
    "coreutils",
    "dash",
    "dpkg",
    "gzip",
    "util-linux",
];

/// The Debian package that provides `program` (a name or a path), if the table knows it.
pub fn package_of(program: &str) -> Option<&'static str> {
    let name = program.rsplit('/').next().unwrap_or(program);
    PROGRAMS
        .iter()
        .find(|(p, _)| *p == name)
        .map(|(_, pkg)| *pkg)
}
