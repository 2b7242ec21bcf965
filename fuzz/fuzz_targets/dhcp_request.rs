//! The DHCP request decoder and everything a decoded request reaches without a socket:
//! its accessors, the proxy decision (boot file selection, reply encoding) and server
//! mode's decision over a small lease table. Nothing may panic on any datagram.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pxelab::config::plan::DhcpPlan;
use pxelab::config::Lab;
use pxelab::dhcp::leases::Leases;
use pxelab::dhcp::{decide, pipeline, request};
use pxelab::engine::BootDecision;

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        Lab::parse(
            std::path::Path::new("/fuzz/lab.yaml"),
            "name: fuzz\nserver_address: 10.0.0.1\nboot: {kernel: k}\n\
             dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.110], \
             router: 10.0.0.1, dns: [10.0.0.1], domain: lab.test, relays: [10.0.0.1], arm64_binary: a.efi}\n\
             nodes:\n  - {mac: '02:00:00:00:00:0a', hostname: node-a, role: k3s-agent, ip: 10.0.0.10}\n",
        )
        .expect("the fuzz lab parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = request::parse(data) else {
        return;
    };
    let _ = (
        req.arch(),
        req.vendor_class(),
        req.uuid(),
        req.relay(),
        req.is_ipxe(),
        req.is_pxe_client(),
        req.is_http_client(),
        req.requested_ip(),
        req.server_id(),
    );
    let lab = lab();
    for pxe_port in [false, true] {
        let _ = decide::proxy(lab, &req, pxe_port, |_| BootDecision::Hold);
    }
    let Ok(DhcpPlan::Server(settings)) = lab.plan().map(|p| &p.dhcp) else {
        panic!("the fuzz lab is server mode");
    };
    let mut table = Leases::default();
    // Twice: the second pass meets the lease or offer the first one made.
    for now in [1_000, 1_001] {
        let _ = pipeline::decide(settings, lab, &mut table, &req, now, |_| BootDecision::Hold);
    }
});
