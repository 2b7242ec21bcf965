//! The thin task between the RA sender ([`crate::net::ra`]) and the engine: reads
//! `dhcp.ipv6_ra` from the lab, runs the sender, and turns its reports into events.
//!
//! RAs belong to server mode: there pxelab is the segment's only server and, without a
//! router advertisement, iPXE waits ~16 s for IPv6 on every boot. In proxy mode the LAN's
//! router owns them. A loopback lab (no `interface`: the demo, unit tests) never sends.
//! The sender is its own server (`Source::Ra`): if its raw socket cannot be opened, its
//! `server-down` says why and DHCP keeps running.

use tokio_util::sync::CancellationToken;

use crate::config::{DhcpMode, Ipv6Ra, Lab};
use crate::engine::{Engine, EventKind, Source};
use crate::net::ndp::{self, RaInfo};
use crate::net::ra::{self, RaConfig, RaPolicy, RaReport, Timing};

/// What the lab asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run the sender.
    Run(RaConfig),
    /// Server mode on an interface, but `dhcp.ipv6_ra: off`: say so once.
    Off(String),
    /// Nothing to do or say (proxy mode, DHCP off, loopback lab).
    Nothing,
}

/// Decides from lab.yaml whether RAs are sent, where, and for which prefix (where:
/// [`Lab::ra_interface`], the one rule the console's header uses too).
pub fn plan(lab: &Lab) -> Plan {
    if let Some(iface) = lab.ra_interface() {
        let policy = match lab.file.dhcp.ipv6_ra {
            Ipv6Ra::On => RaPolicy::Always,
            Ipv6Ra::Auto | Ipv6Ra::Off => RaPolicy::Auto,
        };
        return Plan::Run(RaConfig {
            interface: iface.to_string(),
            prefix: ndp::ula_prefix(&lab.file.name, iface),
            policy,
            timing: Timing::default(),
        });
    }
    match lab.file.interface.as_deref() {
        Some(iface)
            if lab.file.dhcp.mode == DhcpMode::Server
                && !lab.server_address.is_loopback()
                && lab.file.dhcp.ipv6_ra == Ipv6Ra::Off =>
        {
            Plan::Off(format!(
                "not sending RAs on {iface}: dhcp.ipv6_ra: off (iPXE may wait ~16 s for IPv6 unless a router advertises)"
            ))
        }
        _ => Plan::Nothing,
    }
}

/// Runs the sender until `cancel` fires, reporting on `engine`.
pub async fn serve(engine: Engine, cfg: RaConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let (iface, policy) = (cfg.interface.clone(), cfg.policy);
    ra::run(cfg, cancel, move |r| {
        engine.emit(None, event(&iface, policy, r));
    })
    .await?;
    Ok(())
}

/// The event for a report under `policy`.
pub fn event(iface: &str, policy: RaPolicy, r: RaReport) -> EventKind {
    let ra = |sending, reason| EventKind::Ipv6Ra { sending, reason };
    match r {
        RaReport::Listening => EventKind::ServerUp {
            source: Source::Ra,
            addr: format!("raw ICMPv6 on {iface} (router solicitations)"),
        },
        RaReport::Sending { prefix } if policy == RaPolicy::Always => ra(
            true,
            format!(
                "sending RAs on {iface} for {prefix}/64 (dhcp.ipv6_ra: on): iPXE would otherwise wait ~16 s for IPv6"
            ),
        ),
        RaReport::Sending { prefix } => ra(
            true,
            format!(
                "sending RAs on {iface} for {prefix}/64: no other router answered, iPXE would otherwise wait ~16 s for IPv6"
            ),
        ),
        RaReport::OtherRouter {
            from,
            info,
            sending: false,
        } => ra(
            false,
            format!(
                "not sending RAs on {iface}: router {from} advertises there{}; leaving RAs to it",
                what(&info)
            ),
        ),
        RaReport::OtherRouter {
            from,
            info,
            sending: true,
        } => ra(
            true,
            format!(
                "router {from} also advertises on {iface}{}; sending RAs anyway (dhcp.ipv6_ra: on)",
                what(&info)
            ),
        ),
        RaReport::Yielded { from, info } => ra(
            false,
            format!(
                "stopped sending RAs on {iface}: router {from} advertises there{}",
                what(&info)
            ),
        ),
        RaReport::CannotSend { error } => ra(
            false,
            format!("cannot send RAs on {iface} yet ({error}); retrying"),
        ),
        RaReport::SendsAgain => ra(true, format!("RAs go out on {iface} now")),
    }
}

/// ` (fd00:1::/64, DHCPv6)`: what another router advertises, for the operator.
fn what(info: &RaInfo) -> String {
    let mut parts: Vec<String> = info
        .prefixes
        .iter()
        .map(|(p, l)| format!("{p}/{l}"))
        .collect();
    if info.managed || info.other {
        parts.push("DHCPv6".to_string());
    }
    if info.router_lifetime > 0 {
        parts.push("default route".to_string());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(extra: &str) -> Lab {
        let text = format!(
            "name: t\nserver_address: 10.0.0.1\n{extra}\
             boot: {{kernel: vmlinuz}}\nk3s: {{server_url: \"https://10.0.0.1:6443\"}}\n"
        );
        Lab::parse(std::path::Path::new("/tmp/lab.yaml"), &text).unwrap()
    }

    #[test]
    fn only_server_mode_on_an_interface_sends() {
        let srv =
            "dhcp:\n  mode: server\n  subnet: 10.0.0.0/24\n  range: [10.0.0.100, 10.0.0.200]\n";
        let Plan::Run(cfg) = plan(&lab(&format!("interface: br0\n{srv}"))) else {
            panic!("server mode on br0 should send")
        };
        assert_eq!(cfg.policy, RaPolicy::Auto);
        assert_eq!(cfg.prefix, ndp::ula_prefix("t", "br0"));
        let on = format!("interface: br0\n{srv}  ipv6_ra: on\n");
        assert!(matches!(plan(&lab(&on)), Plan::Run(c) if c.policy == RaPolicy::Always));
        let off = format!("interface: br0\n{srv}  ipv6_ra: off\n");
        assert!(matches!(plan(&lab(&off)), Plan::Off(r) if r.contains("ipv6_ra: off")));
        assert_eq!(plan(&lab(srv)), Plan::Nothing, "loopback lab");
        let proxy = "interface: br0\ndhcp:\n  mode: proxy\n  ipv6_ra: on\n";
        assert_eq!(plan(&lab(proxy)), Plan::Nothing);
        // The sender and the console's header agree on where RAs go.
        for text in [
            format!("interface: br0\n{srv}"),
            on,
            off,
            srv.to_string(),
            proxy.to_string(),
        ] {
            let l = lab(&text);
            assert_eq!(
                matches!(plan(&l), Plan::Run(_)),
                l.ra_interface().is_some(),
                "{text}"
            );
        }
    }

    #[test]
    fn reports_read_as_events() {
        let p = ndp::ula_prefix("t", "br0");
        let EventKind::Ipv6Ra { sending, reason } =
            event("br0", RaPolicy::Auto, RaReport::Sending { prefix: p })
        else {
            panic!()
        };
        assert!(sending);
        assert!(reason.starts_with(&format!("sending RAs on br0 for {p}/64")));
        assert!(reason.contains("~16 s"));
        let info = RaInfo {
            managed: false,
            other: true,
            router_lifetime: 1800,
            prefixes: vec![("fd00:1::".parse().unwrap(), 64)],
        };
        let from = "fe80::1".parse().unwrap();
        let EventKind::Ipv6Ra { sending, reason } = event(
            "br0",
            RaPolicy::Auto,
            RaReport::Yielded {
                from,
                info: info.clone(),
            },
        ) else {
            panic!()
        };
        assert!(!sending);
        assert_eq!(
            reason,
            "stopped sending RAs on br0: router fe80::1 advertises there (fd00:1::/64, DHCPv6, default route)"
        );
        assert!(matches!(
            event("br0", RaPolicy::Auto, RaReport::Listening),
            EventKind::ServerUp {
                source: Source::Ra,
                ..
            }
        ));
    }
}
