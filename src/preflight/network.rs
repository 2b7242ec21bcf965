//! `interface:` and `server_address:` against this machine's interfaces.
//!
//! All errors: a missing interface means no server can bind to it; a `server_address`
//! the machine does not hold is put into every DHCP answer (option 54, the boot file
//! URL) and every iPXE script, so every node asks an address nobody answers (the seed's
//! `interface: eth0` on a machine whose NIC is `enp4s0f4u1u3` booted nothing). Each
//! message lists what does exist, so the fix can be copied from it.

use std::net::Ipv4Addr;

use super::Host;
use crate::config::net::parse_subnet;
use crate::config::report::Reporter;
use crate::config::spans::Seg;
use crate::config::Lab;
use crate::net::ifaces::Iface;

pub(super) fn check(lab: &Lab, host: &Host, r: &mut Reporter<'_>) {
    let here = &host.interfaces;
    let f = &lab.file;
    let Some(name) = f.interface.as_deref() else {
        // No interface: the servers bind `server_address` itself, which must be ours.
        if let Some(ip) = f.server_address {
            if here.addresses_known && !here.is_local(ip) {
                r.error(
                    &[Seg::Key("server_address")],
                    format!(
                        "{ip} is not an address of this machine, so nothing can listen on it (interfaces here: {})",
                        here.describe()
                    ),
                );
            }
        }
        return;
    };
    let Some(iface) = here.get(name) else {
        r.error(
            &[Seg::Key("interface")],
            format!(
                "`{name}` does not exist on this machine (interfaces here: {}); set interface: to the lab's NIC",
                here.describe()
            ),
        );
        return;
    };
    if !here.addresses_known {
        return;
    }
    match f.server_address {
        None => r.error(
            &[Seg::Key("interface")],
            format!(
                "server_address is not set, so nodes would be sent to {}; set server_address: to {name}'s address on the lab ({})",
                Ipv4Addr::LOCALHOST,
                addresses(iface)
            ),
        ),
        Some(ip) if !iface.has(ip) => {
            let hint = match (iface.addrs.is_empty(), lab.file.dhcp.subnet.as_deref()) {
                (true, Some(s)) => match parse_subnet(s) {
                    Ok(n) => format!(
                        "; give it the address (`ip addr add {ip}/{} dev {name}`) or fix server_address",
                        n.prefix_len()
                    ),
                    Err(_) => String::new(),
                },
                _ => String::new(),
            };
            r.error(
                &[Seg::Key("server_address")],
                format!(
                    "{ip} is not an address of interface {name} ({}), so no node can reach pxelab there{hint}",
                    addresses(iface)
                ),
            );
        }
        Some(_) => {}
    }
}

/// `its addresses: 192.168.64.2/24` or `it has no IPv4 address`.
fn addresses(iface: &Iface) -> String {
    if iface.addrs.is_empty() {
        "it has no IPv4 address".to_string()
    } else {
        let a: Vec<String> = iface.addrs.iter().map(ToString::to_string).collect();
        format!("its addresses: {}", a.join(", "))
    }
}
