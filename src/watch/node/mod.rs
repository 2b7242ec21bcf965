//! One node's watch: wait for its SSH port, log in, follow its logs and polls, notice it
//! going away and follow it again when it returns. Bounded in time; cancellable.

mod follow;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::follow::{follow, End, Progress};
use super::conn::{self, ConnError};
use super::trust::Trust;
use super::{Target, WatchOptions};
use crate::engine::{Engine, EventKind};
use crate::mac::Mac;

fn trust_for(
    engine: &Engine,
    mac: Mac,
    target: &Target,
    tofu: &Arc<Mutex<Option<russh::keys::PublicKey>>>,
) -> Result<Trust, String> {
    let lab = engine.lab();
    match lab.file.ssh.host_keys.as_str() {
        "pinned" => crate::secrets::host_public_key(&lab, mac)
            .map(|(k, _)| Trust::Pinned(k))
            .map_err(|e| e.to_string()),
        "tofu" => Ok(Trust::Tofu(tofu.clone())),
        path => Ok(Trust::KnownHosts {
            path: lab.resolve(std::path::Path::new(path)),
            host: target.addr.ip().to_string(),
            port: target.addr.port(),
        }),
    }
}

/// Sleeps `d` unless cancelled (false) or the target changes (true, target updated).
async fn pause(
    d: Duration,
    cancel: &CancellationToken,
    rx: &mut watch::Receiver<Target>,
) -> Option<bool> {
    tokio::select! {
        _ = cancel.cancelled() => None,
        r = rx.changed() => if r.is_err() { None } else { Some(true) },
        _ = tokio::time::sleep(d) => Some(false),
    }
}

/// Follows one node until cancelled or given up.
pub(crate) async fn watch_node(
    engine: Engine,
    mac: Mac,
    mut rx: watch::Receiver<Target>,
    cancel: CancellationToken,
    opts: WatchOptions,
) {
    let mut target = *rx.borrow_and_update();
    let mut tofu = Arc::new(Mutex::new(None));
    let mut progress = Progress::default();
    let first_backoff = Duration::from_millis(250);
    let mut backoff = first_backoff;
    let mut deadline = Instant::now() + opts.give_up_after;
    let mut attempt = 0u32;
    let mut auth_failures = 0u32;
    let mut announced = false;
    let mut announced_attempt = 0u32;
    let mut closed_probes = 0u32;
    let mut parked = false;
    loop {
        let mut retarget = false;
        if parked || Instant::now() >= deadline {
            // Not trusted, refused or gone too long: wait for the node to boot again.
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.changed() => if r.is_err() { return } else { retarget = true },
            }
        }
        if !retarget && !announced {
            announced = true;
            announced_attempt = attempt + 1;
            engine.emit(
                Some(mac),
                EventKind::SshConnecting {
                    addr: target.addr,
                    attempt: announced_attempt,
                },
            );
        }
        if !retarget {
            let open = tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.changed() => { if r.is_err() { return } retarget = true; false }
                o = conn::port_open(target.addr, Duration::from_secs(2)) => o,
            };
            if !open && !retarget {
                // Now and then (5th, 10th, 20th… closed probe) the node's row says it
                // is still waited for, so silence on :22 is visible, not a frozen row.
                closed_probes += 1;
                if closed_probes >= 5
                    && closed_probes.is_multiple_of(5)
                    && (closed_probes / 5).is_power_of_two()
                {
                    engine.emit(
                        Some(mac),
                        EventKind::SshConnecting {
                            addr: target.addr,
                            attempt: closed_probes,
                        },
                    );
                }
                match pause(backoff, &cancel, &mut rx).await {
                    None => return,
                    Some(changed) => retarget = changed,
                }
                backoff = (backoff * 2).min(opts.backoff_max);
            }
            if open && !retarget {
                attempt += 1;
                if attempt != announced_attempt {
                    engine.emit(
                        Some(mac),
                        EventKind::SshConnecting {
                            addr: target.addr,
                            attempt,
                        },
                    );
                }
                match connect_and_follow(
                    &engine,
                    mac,
                    &target,
                    &tofu,
                    &opts,
                    &mut progress,
                    &cancel,
                    &mut rx,
                )
                .await
                {
                    Step::Cancelled => return,
                    Step::NewTarget => retarget = true,
                    Step::Lost(reason) => {
                        engine.emit(Some(mac), EventKind::SshLost { reason });
                        announced = false;
                        auth_failures = 0;
                        backoff = first_backoff;
                        deadline = Instant::now() + opts.give_up_after;
                    }
                    Step::Failed(ConnError::HostKey { expected, seen, .. }) => {
                        engine.emit(Some(mac), EventKind::HostKeyMismatch { expected, seen });
                        parked = true;
                    }
                    Step::Failed(e @ ConnError::Auth { .. }) => {
                        auth_failures += 1;
                        engine.emit(
                            Some(mac),
                            EventKind::SshLost {
                                reason: e.to_string(),
                            },
                        );
                        parked = auth_failures >= opts.max_auth_failures;
                        backoff = (backoff * 2).min(opts.backoff_max);
                    }
                    Step::Failed(e) => {
                        tracing::debug!("SSH to {mac}: {e}");
                        match pause(backoff, &cancel, &mut rx).await {
                            None => return,
                            Some(changed) => retarget = changed,
                        }
                        backoff = (backoff * 2).min(opts.backoff_max);
                    }
                }
            }
        }
        if retarget {
            let next = *rx.borrow_and_update();
            if next.boot != target.boot {
                // A new boot: a new host key may be trusted on first use.
                tofu = Arc::new(Mutex::new(None));
            }
            target = next;
            parked = false;
            announced = false;
            attempt = 0;
            auth_failures = 0;
            backoff = first_backoff;
            deadline = Instant::now() + opts.give_up_after;
        }
    }
}

enum Step {
    Cancelled,
    NewTarget,
    Lost(String),
    Failed(ConnError),
}

#[allow(clippy::too_many_arguments)]
async fn connect_and_follow(
    engine: &Engine,
    mac: Mac,
    target: &Target,
    tofu: &Arc<Mutex<Option<russh::keys::PublicKey>>>,
    opts: &WatchOptions,
    progress: &mut Progress,
    cancel: &CancellationToken,
    rx: &mut watch::Receiver<Target>,
) -> Step {
    let lab = engine.lab();
    let trust = match trust_for(engine, mac, target, tofu) {
        Ok(t) => t,
        Err(e) => return Step::Lost(format!("no host key to check against: {e}")),
    };
    let key = match crate::secrets::operator_key(&lab) {
        Ok(k) => k,
        Err(e) => return Step::Lost(format!("no operator key: {e}")),
    };
    let user = lab.file.ssh.user.clone();
    let opened = tokio::select! {
        _ = cancel.cancelled() => return Step::Cancelled,
        r = rx.changed() => return if r.is_err() { Step::Cancelled } else { Step::NewTarget },
        c = conn::open(target.addr, trust, &user, key, opts.connect_timeout, opts.ping_every) => c,
    };
    let conn = match opened {
        Ok(c) => c,
        Err(e) => return Step::Failed(e),
    };
    engine.emit(Some(mac), EventKind::SshUp { addr: target.addr });
    let end = follow(engine, mac, &conn, opts, progress, cancel, rx).await;
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        conn.disconnect(russh::Disconnect::ByApplication, "pxelab done", "en"),
    )
    .await;
    match end {
        End::Cancelled => Step::Cancelled,
        End::NewTarget => Step::NewTarget,
        End::Lost(r) => Step::Lost(r),
    }
}
