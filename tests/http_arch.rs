//! Mixed labs over HTTP, with the real `curl`: a node whose architecture lab.yaml leaves
//! open is first asked for iPXE's `${buildarch}`, and the answer picks the
//! `boot.arch` profile (kernel, initramfs and the command line's modloop); a node whose
//! `arch` is set gets its profile at once; the profile's files are served under
//! /assets/ and the node's record shows the architecture.

mod common;
mod http_lab;

use http_lab::{curl, Server, TempLab, NODE1, NODE2};
use pxelab::config::Arch;
use pxelab::engine::{EventKind, FetchKind};

fn mixed_lab() -> TempLab {
    let lab = TempLab::new();
    let assets = lab.dir.path().join("assets");
    for (name, seed) in [
        ("vmlinuz-arm", 11),
        ("initramfs-arm", 12),
        ("modloop-arm", 13),
    ] {
        std::fs::write(assets.join(name), http_lab::pattern(4096, seed)).unwrap();
    }
    let text = http_lab::read(&lab.path)
        .replace(
            "  cmdline: \"console=ttyS0 ip=dhcp\"\n",
            "  cmdline: \"console=ttyS0 ip=dhcp modloop={{ modloop_url }}\"\n  arch:\n    aarch64: {kernel: vmlinuz-arm, initrds: [initramfs-arm], modloop: modloop-arm}\n",
        )
        .replace("    kernel: vmlinuz-special\n", "    arch: aarch64\n");
    std::fs::write(&lab.path, text).unwrap();
    lab
}

fn what(ev: &pxelab::engine::Event) -> (FetchKind, u16) {
    match &ev.kind {
        EventKind::HttpFetch { what, status, .. } => (*what, *status),
        EventKind::Refused { .. } => (FetchKind::Other, 400),
        other => panic!("expected http-fetch, got {other:?}"),
    }
}

#[test]
fn buildarch_picks_the_profile_and_a_set_arch_needs_no_probe() {
    if !common::require_program("curl") {
        return;
    }
    let mut s = Server::start(mixed_lab(), false);
    let base = s.lab.base();

    // Architecture open: the probe, which asks again with ${buildarch}.
    let g = curl(&format!("{base}/boot.ipxe?mac={NODE1}"), &[]);
    assert_eq!(g.status, 200);
    assert_eq!(
        g.text(),
        format!("#!ipxe\nchain --autofree {base}/boot.ipxe?mac={NODE1}&arch=${{buildarch}}\n")
    );
    assert_eq!(what(&s.outcome()), (FetchKind::ArchProbe, 200));

    // arm64 iPXE: the aarch64 profile, modloop included.
    let g = curl(&format!("{base}/boot.ipxe?mac={NODE1}&arch=arm64"), &[]);
    assert_eq!(g.status, 200);
    let t = g.text();
    assert!(
        t.contains(&format!(
            "kernel {base}/assets/vmlinuz-arm initrd=initramfs-arm "
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!("initrd {base}/assets/initramfs-arm\n")),
        "{t}"
    );
    assert!(
        t.contains(&format!("modloop={base}/assets/modloop-arm ")),
        "{t}"
    );
    assert!(!t.contains("-lts"), "{t}");
    assert_eq!(what(&s.outcome()), (FetchKind::Script, 200));
    let rec = s.engine.node(&NODE1.parse().unwrap()).unwrap();
    assert_eq!(rec.cpu, Some(Arch::Aarch64));

    // undionly.kpxe is an i386 build: the x86_64 profile (boot:).
    let g = curl(&format!("{base}/boot.ipxe?mac={NODE1}&arch=i386"), &[]);
    let t = g.text();
    assert!(
        t.contains(&format!(
            "kernel {base}/assets/vmlinuz-lts initrd=initramfs-lts "
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!("modloop={base}/assets/modloop-lts ")),
        "{t}"
    );
    assert_eq!(what(&s.outcome()), (FetchKind::Script, 200));

    // An architecture no profile is for: refused, saying which ones are.
    let g = curl(&format!("{base}/boot.ipxe?mac={NODE1}&arch=riscv64"), &[]);
    assert_eq!(g.status, 400);
    assert_eq!(what(&s.outcome()).1, 400);

    // `arch: aarch64` in lab.yaml: the profile at once, no probe.
    let g = curl(&format!("{base}/boot.ipxe?mac={NODE2}"), &[]);
    let t = g.text();
    assert!(
        t.contains(&format!("kernel {base}/assets/vmlinuz-arm ")),
        "{t}"
    );
    assert_eq!(what(&s.outcome()), (FetchKind::Script, 200));

    // The profile's files are served, as the kernel, initramfs and modloop they are.
    for (name, kind) in [
        ("vmlinuz-arm", FetchKind::Kernel),
        ("initramfs-arm", FetchKind::Initrd),
        ("modloop-arm", FetchKind::Modloop),
    ] {
        let g = curl(&format!("{base}/assets/{name}?mac={NODE2}"), &[]);
        assert_eq!(g.status, 200, "{name}");
        assert_eq!(g.body, s.lab.asset(name), "{name}");
        let ev = loop {
            let ev = s.outcome();
            if matches!(ev.kind, EventKind::HttpFetch { .. }) {
                break ev;
            }
        };
        assert_eq!(what(&ev), (kind, 200), "{name}");
    }
}
