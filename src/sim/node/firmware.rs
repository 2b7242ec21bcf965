//! From power-on to the booted kernel's NoCloud data: PXE ROM DHCP, TFTP of iPXE, iPXE
//! DHCP and boot script (waiting while held), kernel and initrds, initramfs DHCP and
//! modloop, NoCloud. Then the system takes over ([`super::system`]).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::system::boot_phase;
use super::{Fault, Outcome, Run, Step, StepErr};
use crate::sim::dhcp::Asker;
use crate::sim::ipxe::{self, ScriptAction};
use crate::sim::logs::NodeLogs;
use crate::sim::tftp::{self, TftpOptions};

/// Everything up to the booted kernel; hands over to [`boot_phase`]. `None`: a step
/// failed (the last recorded step says which).
pub(super) async fn boot_inner(run: &mut Run<'_>) -> Option<Outcome> {
    let env = run.env;
    let mac = run.node.mac;
    env.pause(run.node.power_on_after).await;
    run.t0 = Instant::now();
    // Firmware POST, then the PXE ROM's DISCOVER.
    env.pause_ms(1500).await;
    let lease = step!(run, Step::DhcpPxe, {
        run.dhcp(Asker::PxeRom).await.map(|l| {
            let d = format!(
                "{} file {}",
                l.yiaddr
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "proxy".into()),
                l.boot_file.clone().unwrap_or_default()
            );
            (l, d)
        })
    });
    if let Some(ip) = lease.yiaddr.filter(|a| a.is_loopback()) {
        run.addr = ip;
    }
    let boot_file = lease.boot_file.clone().unwrap_or_default();
    if boot_file.is_empty() {
        run.record(
            Step::Tftp,
            Instant::now(),
            &Err("no boot file offered".into()),
        );
        return None;
    }
    if !boot_file.starts_with("http://") {
        let tftp_server = if lease.siaddr.is_unspecified() {
            env.server
        } else {
            lease.siaddr
        };
        step!(run, Step::Tftp, {
            let sock = run.udp().await?;
            let to = SocketAddr::new(IpAddr::V4(tftp_server), env.tftp_port);
            let opts = TftpOptions::default();
            match tokio::time::timeout(env.step_timeout, tftp::read(&sock, to, &boot_file, &opts))
                .await
            {
                Err(_) => Err(format!("tftp {boot_file}: timed out")),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(got)) if got.data.is_empty() => Err(format!("tftp {boot_file}: empty file")),
                Ok(Ok(got)) => Ok((
                    (),
                    format!("{boot_file} {} B blksize {}", got.data.len(), got.blksize),
                )),
            }
        });
        // iPXE starts, prints its banner, opens the NIC.
        env.pause_ms(800).await;
    }
    let script_url = if boot_file.starts_with("http://") {
        boot_file
    } else {
        let l = step!(run, Step::DhcpIpxe, {
            run.dhcp(Asker::Ipxe).await.map(|l| {
                let d = l.boot_file.clone().unwrap_or_default();
                (l, d)
            })
        });
        if let Some(ip) = l.yiaddr.filter(|a| a.is_loopback()) {
            run.addr = ip;
        }
        match l.boot_file {
            Some(f) if f.starts_with("http://") => ipxe::expand(&f, mac),
            other => {
                run.record(
                    Step::Script,
                    Instant::now(),
                    &Err(format!("iPXE was offered {other:?}, not an HTTP script (it would chainload forever)")),
                );
                return None;
            }
        }
    };
    // The script, following the wait loop while held.
    let start = Instant::now();
    let mut url = script_url;
    let mut held_since: Option<Instant> = None;
    let mut rounds = 0u32;
    let (kernel, cmdline, initrds) = loop {
        let r = run.get_ok(&url, true).await;
        let text = match r {
            Ok(r) => r.text(),
            Err(e) => {
                run.record(Step::Script, start, &Err(e));
                return None;
            }
        };
        match ipxe::parse(&text, mac) {
            Ok(ScriptAction::Boot {
                kernel,
                cmdline,
                initrds,
            }) => break (kernel, cmdline, initrds),
            Ok(ScriptAction::Chain { url: next, sleep_s }) => {
                let since = *held_since.get_or_insert_with(Instant::now);
                run.held = true;
                if since.elapsed() > env.hold_timeout {
                    run.record(
                        Step::Held,
                        since,
                        &Err("still held when the hold timeout ran out".into()),
                    );
                    return None;
                }
                rounds = rounds.saturating_add(1);
                if env.hold_rounds.is_some_and(|n| rounds >= n) {
                    run.record(
                        Step::Held,
                        since,
                        &Err(format!("still held after {rounds} rounds of the wait loop")),
                    );
                    return None;
                }
                // iPXE's `sleep` is wall time; the demo's speed scales it too.
                env.pause(Duration::from_secs(sleep_s.max(1))).await;
                url = next;
            }
            Err(e) => {
                run.record(Step::Script, start, &Err(format!("{url}: {e}")));
                return None;
            }
        }
    };
    if let Some(since) = held_since {
        run.record(Step::Held, since, &Ok("released by adoption".into()));
    }
    run.record(Step::Script, start, &Ok(url.clone()));
    step!(run, Step::Kernel, {
        run.get_ok(&kernel, false)
            .await
            .map(|r| ((), format!("{} B", r.bytes)))
    });
    step!(run, Step::Initrd, {
        let mut total = 0;
        let mut res = Ok(());
        for i in &initrds {
            match run.get_ok(i, false).await {
                Ok(r) => total += r.bytes,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        res.map(|_| ((), format!("{} file(s), {total} B", initrds.len())))
    });
    if let Some(f @ Fault::StallAfterInitrd) = run.node.fault {
        return Some(Outcome::ExpectedFailure { fault: f });
    }
    // The kernel boots; the initramfs brings the NIC up with ip=dhcp.
    env.pause_ms(4000).await;
    if lease.yiaddr.is_some() && cmdline.split_whitespace().any(|w| w == "ip=dhcp") {
        let l = step!(run, Step::DhcpInitramfs, {
            run.dhcp(Asker::Udhcpc).await.map(|l| {
                (
                    l.clone(),
                    l.yiaddr.map(|a| a.to_string()).unwrap_or_default(),
                )
            })
        });
        if let Some(ip) = l.yiaddr.filter(|a| a.is_loopback()) {
            run.addr = ip;
        }
    }
    if let Some(m) = ipxe::param(&cmdline, "modloop").filter(|m| m.starts_with("http://")) {
        let m = m.to_string();
        step!(run, Step::Modloop, {
            run.get_ok(&m, false)
                .await
                .map(|r| ((), format!("{} B", r.bytes)))
        });
    }
    let logs = NodeLogs::new();
    if run.node.fault == Some(Fault::LowMemory) {
        logs.set_free_pct(5);
    }
    boot_phase(run, &logs, &cmdline).await
}
