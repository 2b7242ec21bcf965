//! Full DHCP server mode: authoritative for `dhcp.subnet`, lab nodes' `ip` as
//! reservations, a dynamic `dhcp.range`, boot information for PXE and iPXE clients.
//!
//! This is the thin socket loop: the decision is [`super::pipeline`] (pure over the lease
//! table and a clock); [`run`] wires it to a socket and to the lease writer
//! ([`super::writer`]), which puts every lease on disk before its ACK goes out.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::leases::Leases;
use super::listen::{self, Decision, Listener, PortRole};
use super::pipeline::decide;
use super::request::{MsgType, Request};
use super::settings::{now, Settings};
use super::writer::{self, LeaseWriter};
use crate::engine::{Engine, EventKind, Source};
use crate::net::bind;

/// Runs server mode until `cancel` fires.
pub async fn run(
    engine: Engine,
    settings: Settings,
    ip: Ipv4Addr,
    role: PortRole,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let lab = engine.lab();
    let settings = Arc::new(settings);
    let path = writer::leases_path(&lab);
    let table = Arc::new(Mutex::new(Leases::load(&path)?));
    let iface = settings.listen.interface.clone();
    let sock = bind::bind_tokio(
        SocketAddrV4::new(ip, settings.listen.port),
        iface.as_deref(),
    )?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Dhcp,
            addr: format!(
                "DHCP server udp {} for {} (range {}-{}, leases {})",
                sock.local_addr()?,
                settings.subnet,
                settings.range.0,
                settings.range.1,
                path.display()
            ),
        },
    );
    // The writer outlives the listener by its last save: it stops on its own token.
    let writer_stop = CancellationToken::new();
    let (lease_writer, writer_task) = LeaseWriter::start(
        engine.clone(),
        table.clone(),
        path.clone(),
        writer_stop.clone(),
    );
    let observe: listen::Observe = Arc::new(|_: &Engine, req: &Request, _: &PortRole| {
        matches!(
            req.msg,
            MsgType::Discover | MsgType::Request | MsgType::Inform
        )
    });
    let (s2, t3) = (settings.clone(), table.clone());
    let decide_fn: listen::Decide =
        Arc::new(move |engine: &Engine, req: &Request, _: &PortRole| {
            let lab = engine.lab();
            let out = {
                let mut t = crate::engine::lock(&t3);
                decide(&s2, &lab, &mut t, req, now(), |m| engine.decide(m))
            };
            if let Some((action, ip)) = out.lease_event {
                engine.emit(
                    Some(req.mac),
                    EventKind::DhcpLease {
                        action: action.into(),
                        ip,
                    },
                );
            }
            // An ACK that binds a lease waits until the lease is on disk.
            let after = out.bound.then(|| lease_writer.commit());
            Decision {
                verdict: out.verdict,
                after,
            }
        });
    let r = listen::run(
        engine.clone(),
        Listener::Udp(sock),
        role,
        observe,
        decide_fn,
        Arc::new(super::drops::Drops::default()),
        cancel,
    )
    .await;
    // The last save of the lease table: a lease lost here would be handed out twice.
    writer_stop.cancel();
    if tokio::time::timeout(std::time::Duration::from_secs(10), writer_task)
        .await
        .is_err()
    {
        tracing::warn!(
            "the lease file {} was not saved at shutdown within 10 s",
            path.display()
        );
    }
    r
}
