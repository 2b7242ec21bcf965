//! Who may receive a node's user-data (its k3s token, host private key and node
//! password): the one rule, used by the NoCloud handler and by the SSH watcher (which
//! follows only an address this rule accepts).
//!
//! user-data goes only to an address the node really holds:
//!
//! | the asking address                                          | answer            |
//! |-------------------------------------------------------------|-------------------|
//! | the kernel's ARP table gives it to another MAC              | no, whatever else |
//! | the node's lease from pxelab's DHCP server (server mode)    | yes               |
//! | the node's fixed `ip:` (server mode: a reservation)         | yes               |
//! | on-link, its ARP entry is the node's MAC, and the node fetched its boot script in this boot | yes |
//! | loopback (this machine), and the last address the node fetched its boot files from | yes |
//! | anything else: no neighbour entry (routed, or never seen), or not booted | no |
//!
//! Who fetched `boot.ipxe?mac=M` proves nothing: anyone can ask for any node's script.
//! What does prove something is the neighbour table: an on-link address is in it with
//! the MAC that answered ARP for it, and a routed host (another subnet, through a
//! router) is never in it, because its packets arrive from the router's MAC. So a host
//! on another subnet that fetched the victim's script first gets nothing, and the
//! real node, on the segment with its own MAC, is served whatever was fetched before.
//! In proxy mode a routed node (behind a relay) gets user-data only through a fixed
//! address in server mode; a lab that routes its nodes runs pxelab's DHCP server.
//!
//! Loopback has no neighbour entry: `pxelab demo` and the loopback tests run their
//! nodes there, so a loopback address is taken at its word once the node's boot files
//! were fetched from it. Only programs on the pxelab machine can use it.
//!
//! The lookup ([`check`]) gathers the facts; [`decide`] is the rule, pure, so the table
//! above is its unit test.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::DhcpMode;
use crate::engine::{Engine, NodeState};
use crate::mac::Mac;

/// What the kernel's neighbour table says about the asking address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbour {
    /// A complete ARP entry with this MAC (the address is on-link).
    Mac(Mac),
    /// No complete entry: routed, or not on any attached segment.
    Unknown,
    /// A loopback address: this machine.
    Local,
}

/// Everything the rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The node whose user-data is asked for.
    pub mac: Mac,
    /// The asking address.
    pub client: IpAddr,
    /// What the neighbour table says about `client`.
    pub neighbour: Neighbour,
    /// The address pxelab's DHCP server leased the node (server mode only).
    pub leased: Option<Ipv4Addr>,
    /// The node's fixed `ip:` (server mode only: elsewhere it is informative).
    pub fixed: Option<Ipv4Addr>,
    /// Whether the node's boot script was served in its current boot.
    pub booted: bool,
    /// The address the node last fetched its boot files from (for loopback only).
    pub booted_from: Option<IpAddr>,
}

/// Why user-data is refused (words for the `refused` event; never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The MAC is not in lab.yaml.
    #[error("{mac} is not in the lab")]
    NotInLab {
        /// The node.
        mac: Mac,
    },
    /// The ARP table gives the asking address to another machine.
    #[error("user-data of {mac} asked from {client}, which the ARP table gives to {other}")]
    OtherMac {
        /// The node.
        mac: Mac,
        /// The asking address.
        client: IpAddr,
        /// The MAC at that address.
        other: Mac,
    },
    /// The node did not fetch its boot script in this boot.
    #[error("user-data of {mac} asked from {client}, but it has not booted yet")]
    NotBooted {
        /// The node.
        mac: Mac,
        /// The asking address.
        client: IpAddr,
    },
    /// Nothing ties the asking address to the node.
    #[error(
        "user-data of {mac} asked from {client}, which is not its address (not its lease or fixed ip, not on-link with its MAC)"
    )]
    NotItsAddress {
        /// The node.
        mac: Mac,
        /// The asking address.
        client: IpAddr,
    },
}

/// The rule (see the module doc's table).
pub fn decide(f: &Facts) -> Result<(), Refusal> {
    let (mac, client) = (f.mac, f.client);
    if let Neighbour::Mac(other) = f.neighbour {
        if other != mac {
            return Err(Refusal::OtherMac { mac, client, other });
        }
    }
    let held = [f.leased, f.fixed]
        .iter()
        .flatten()
        .any(|a| IpAddr::V4(*a) == client);
    if held {
        return Ok(());
    }
    match f.neighbour {
        Neighbour::Mac(_) | Neighbour::Local if !f.booted => {
            Err(Refusal::NotBooted { mac, client })
        }
        Neighbour::Mac(_) => Ok(()),
        Neighbour::Local if f.booted_from == Some(client) => Ok(()),
        Neighbour::Local | Neighbour::Unknown => Err(Refusal::NotItsAddress { mac, client }),
    }
}

/// What the kernel's neighbour table says about `ip` (the one ARP reader, [`crate::net::arp`]).
pub fn neighbour(ip: IpAddr) -> Neighbour {
    if ip.is_loopback() {
        return Neighbour::Local;
    }
    match crate::net::arp::mac_of(ip) {
        Some(m) => Neighbour::Mac(m),
        None => Neighbour::Unknown,
    }
}

/// Whether `client` may fetch `mac`'s user-data now: the facts from lab.yaml, the
/// engine's record of the node and the kernel's neighbour table, judged by [`decide`].
pub fn check(engine: &Engine, mac: Mac, client: IpAddr) -> Result<(), Refusal> {
    let lab = engine.lab();
    let Some(entry) = lab.node_by_mac(&mac) else {
        return Err(Refusal::NotInLab { mac });
    };
    let server = lab.file.dhcp.mode == DhcpMode::Server;
    let rec = engine.node(&mac);
    let facts = Facts {
        mac,
        client,
        neighbour: neighbour(client),
        leased: rec.as_ref().and_then(|r| r.leased_ip).filter(|_| server),
        fixed: entry.ip.filter(|_| server),
        booted: rec
            .as_ref()
            .is_some_and(|r| r.reached_ms.contains_key(&NodeState::ScriptServed)),
        booted_from: rec.as_ref().and_then(|r| r.seen_ip),
    };
    decide(&facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: Mac = Mac([0x52, 0x54, 0, 0, 0, 1]);
    const OTHER: Mac = Mac([0x52, 0x54, 0, 0, 0, 9]);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A node that booted from 10.0.0.5, leased 10.0.0.5, fixed 10.0.0.10.
    fn facts(client: &str, neighbour: Neighbour) -> Facts {
        Facts {
            mac: NODE,
            client: ip(client),
            neighbour,
            leased: Some("10.0.0.5".parse().unwrap()),
            fixed: Some("10.0.0.10".parse().unwrap()),
            booted: true,
            booted_from: Some(ip("10.0.0.5")),
        }
    }

    #[test]
    fn the_rule_table() {
        use Neighbour::*;
        let ok = |f: Facts| decide(&f).is_ok();
        // Leased and fixed addresses: yes, with or without a neighbour entry (a node
        // behind a relay has none), even before its script (its lease proves it).
        assert!(ok(facts("10.0.0.5", Unknown)));
        assert!(ok(facts("10.0.0.5", Mac(NODE))));
        assert!(ok(facts("10.0.0.10", Unknown)));
        assert!(ok(Facts {
            booted: false,
            ..facts("10.0.0.10", Unknown)
        }));
        // …but not when the ARP table gives that address to another machine.
        assert!(matches!(
            decide(&facts("10.0.0.5", Mac(OTHER))),
            Err(Refusal::OtherMac { other: OTHER, .. })
        ));
        assert!(!ok(facts("10.0.0.10", Mac(OTHER))));
        // On-link with the node's own MAC: yes once it booted, from any address.
        assert!(ok(facts("10.0.0.77", Mac(NODE))));
        assert!(matches!(
            decide(&Facts {
                booted: false,
                ..facts("10.0.0.77", Mac(NODE))
            }),
            Err(Refusal::NotBooted { .. })
        ));
        // On-link with another MAC: no.
        assert!(!ok(facts("10.0.0.77", Mac(OTHER))));
        // No neighbour entry (a routed host), even the one that fetched the script: no.
        assert!(matches!(
            decide(&Facts {
                booted_from: Some(ip("10.9.9.9")),
                ..facts("10.9.9.9", Unknown)
            }),
            Err(Refusal::NotItsAddress { .. })
        ));
        // Without a lease or fixed address (proxy mode), only the neighbour table counts.
        let proxy = |client: &str, n| Facts {
            leased: None,
            fixed: None,
            booted_from: Some(ip(client)),
            ..facts(client, n)
        };
        assert!(ok(proxy("10.0.0.5", Mac(NODE))));
        assert!(!ok(proxy("10.0.0.5", Unknown)));
        assert!(!ok(proxy("10.0.0.5", Mac(OTHER))));
        // Loopback: the address its boot files came from, once booted.
        assert!(ok(proxy("127.0.0.1", Local)));
        assert!(!ok(Facts {
            booted_from: Some(ip("127.0.0.2")),
            ..proxy("127.0.0.1", Local)
        }));
        assert!(!ok(Facts {
            booted: false,
            ..proxy("127.0.0.1", Local)
        }));
    }

    #[test]
    fn check_reads_the_lab_and_the_engine() {
        use crate::engine::{EventKind, FetchKind};
        let script = |client: &str| EventKind::HttpFetch {
            path: "/boot.ipxe".into(),
            client: ip(client),
            what: FetchKind::Script,
            status: 200,
            bytes: 1,
            ms: 1,
        };
        let lab = |d: &std::path::Path, mode: &str| {
            let text = format!("name: t\ndhcp:\n  mode: {mode}\nboot:\n  kernel: vmlinuz\nnodes:\n  - mac: 52:54:00:00:00:01\n    hostname: a\n    role: k3s-server\n    ip: 127.0.0.9\n");
            crate::config::Lab::parse(&d.join("lab.yaml"), &text).unwrap()
        };
        let d = tempfile::tempdir().unwrap();
        let engine = Engine::new(lab(d.path(), "proxy"));
        let me = ip("127.0.0.1");
        assert!(matches!(
            check(&engine, NODE, me),
            Err(Refusal::NotBooted { .. })
        ));
        engine.emit(Some(NODE), script("127.0.0.1"));
        assert!(check(&engine, NODE, me).is_ok());
        assert!(check(&engine, NODE, ip("127.0.0.2")).is_err());
        assert!(
            check(&engine, NODE, ip("127.0.0.9")).is_err(),
            "a fixed ip: is informative in proxy mode"
        );
        assert!(matches!(
            check(&engine, OTHER, me),
            Err(Refusal::NotInLab { .. })
        ));
        // Server mode: the fixed address is the node's, before any script.
        let engine = Engine::new(lab(d.path(), "server"));
        assert!(check(&engine, NODE, ip("127.0.0.9")).is_ok());
        assert!(check(&engine, NODE, me).is_err());
    }

    #[test]
    fn loopback_is_local_and_never_read_from_the_arp_table() {
        assert_eq!(neighbour(ip("127.0.0.3")), Neighbour::Local);
        assert_eq!(neighbour(ip("::1")), Neighbour::Local);
    }

    #[test]
    fn refusals_say_who_and_why() {
        let r = decide(&facts("10.0.0.5", Neighbour::Mac(OTHER))).unwrap_err();
        assert_eq!(
            r.to_string(),
            "user-data of 52:54:00:00:00:01 asked from 10.0.0.5, which the ARP table gives to 52:54:00:00:00:09"
        );
    }
}
