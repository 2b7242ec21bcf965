//! Snapshots of the k3s server's datastore, taken over SSH into `.pxelab/snapshots/`
//! ([`crate::secrets::snapshots`]): on a schedule over the watcher's own session
//! (`k3s.snapshots.every`), and before a reboot pxelab performs (over the reboot's
//! connection, which then reboots: [`super::reboot::reboot`]). The server's next boot restores the newest one before
//! k3s starts (its user-data fetches `/snapshot/<mac>`, served only to the server).
//!
//! What is saved: `server/db/` (the datastore), `server/tls/` (the certificates k3s made
//! from the cluster CA), `server/token` and `server/cred/`, as one tar.gz streamed from
//! the node's stdout. Why this way, and not another:
//! - The single k3s server stores its state in SQLite through kine
//!   (`server/db/state.db` + `-wal`); `k3s etcd-snapshot` exists only for embedded etcd
//!   (`--cluster-init`). A server on etcd is refused with that reason rather than given a
//!   snapshot pxelab cannot restore (restoring etcd takes `--cluster-reset`).
//! - A copy of a SQLite file that is being written may be torn. Before a reboot k3s is
//!   going down anyway: it is stopped first (`rc-service k3s stop`), and a plain copy of
//!   a closed database is consistent, whatever tools the node has. The scheduled
//!   snapshot must not stop the cluster, so it copies `state.db` with SQLite's own
//!   online backup (`sqlite3 state.db ".backup …"`); the `sqlite3` tool is not on Alpine
//!   by default, so the built-in k3s-server role installs the `sqlite` package. Without
//!   it the scheduled snapshot fails saying so, and never copies a live database.
//! - A tar of the folders (busybox `tar`, on every node) keeps the restore a plain
//!   `tar -x` before k3s starts, with no k3s tooling involved.
//!
//! A restored datastore keeps the cluster's identity only with the same token (the
//! token is the passphrase of its encrypted bootstrap data) and CA: both are pxelab's.

use std::path::PathBuf;
use std::time::Duration;

use russh::ChannelMsg;

use super::conn::{privileged, shell_quote, Conn};
use crate::engine::{Engine, EventKind};
use crate::mac::Mac;

/// k3s's server folder on the node.
pub const SERVER_DIR: &str = "/var/lib/rancher/k3s/server";

/// Exit status of the script when the server has no datastore yet.
const NOTHING_YET: u32 = 3;
/// The longest a snapshot may take.
const LIMIT: Duration = Duration::from_secs(300);
/// The largest snapshot accepted.
const MAX_BYTES: u64 = 4 << 30;

/// Why a snapshot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `k3s.snapshots.every`.
    Scheduled,
    /// Before a reboot pxelab performs: k3s is stopped first.
    BeforeReboot,
}

impl Why {
    /// As in the file name and the event.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Scheduled => "scheduled",
            Why::BeforeReboot => "before-reboot",
        }
    }
}

/// The shell script run as root on the server; a tar.gz on stdout (see the module doc).
pub fn script(why: Why) -> String {
    let stop = u8::from(why == Why::BeforeReboot);
    format!(
        r#"D={SERVER_DIR}; STOP={stop}
[ -d "$D/db" ] || {{ echo "no k3s datastore in $D/db yet" >&2; exit {NOTHING_YET}; }}
if [ -d "$D/db/etcd" ]; then echo "the server runs embedded etcd (cluster-init): pxelab snapshots only the SQLite datastore" >&2; exit 4; fi
T=$(mktemp -d /tmp/pxelab-snapshot.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
S=0
if [ $STOP = 1 ]; then rc-service k3s stop >/dev/null 2>&1 && S=1; fi
fail() {{ echo "$1" >&2; if [ $S = 1 ]; then rc-service k3s start >/dev/null 2>&1; fi; exit 1; }}
mkdir -p "$T/db" || fail "cannot make $T/db"
if [ $STOP = 0 ] && [ -f "$D/db/state.db" ]; then
  command -v sqlite3 >/dev/null 2>&1 || fail "no sqlite3 on the server for an online copy of state.db (install the sqlite package)"
  for f in "$D"/db/*; do case "$f" in */state.db|*/state.db-wal|*/state.db-shm) ;; *) cp -a "$f" "$T/db/" || fail "cannot copy $f" ;; esac; done
  sqlite3 "$D/db/state.db" ".backup '$T/db/state.db'" || fail "sqlite3 .backup of $D/db/state.db failed"
else
  cp -a "$D/db/." "$T/db/" || fail "cannot copy $D/db"
fi
for x in tls token cred; do if [ -e "$D/$x" ]; then cp -a "$D/$x" "$T/" || fail "cannot copy $D/$x"; fi; done
tar -czf - -C "$T" . || fail "tar failed"
"#
    )
}

/// Takes one snapshot of `mac` over `c`. `Ok(None)`: the server has no datastore yet.
/// Reported as a `k3s-snapshot` event either way (except "nothing yet").
pub async fn take(
    engine: &Engine,
    mac: Mac,
    c: &Conn,
    why: Why,
) -> Result<Option<PathBuf>, String> {
    let r = stream(engine, mac, c, why).await;
    let event = |ok: bool, detail: String| {
        engine.emit(
            Some(mac),
            EventKind::K3sSnapshot {
                why: why.as_str().to_string(),
                ok,
                detail,
            },
        );
    };
    match &r {
        Ok(Some((path, bytes))) => event(
            true,
            format!(
                "{} ({bytes} B)",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        ),
        Ok(None) => {}
        Err(e) => event(false, e.clone()),
    }
    r.map(|o| o.map(|(p, _)| p))
}

async fn stream(
    engine: &Engine,
    mac: Mac,
    c: &Conn,
    why: Why,
) -> Result<Option<(PathBuf, u64)>, String> {
    let lab = engine.lab();
    let keep = lab.file.k3s.snapshots.keep;
    let mut pending = crate::secrets::snapshots::begin(&lab.state_dir(), mac, why.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let cmd = privileged(&format!("sh -c {}", shell_quote(&script(why))));
    let work = async {
        let mut ch = c.channel_open_session().await.map_err(|e| e.to_string())?;
        ch.exec(true, cmd.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let mut status = None;
        let mut err = Vec::new();
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    pending.write(&data).await.map_err(|e| e.to_string())?;
                    if pending.bytes() > MAX_BYTES {
                        return Err(format!("larger than {MAX_BYTES} B: not kept"));
                    }
                }
                ChannelMsg::ExtendedData { data, .. } if err.len() < 1024 => {
                    err.extend_from_slice(&data);
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok((status, String::from_utf8_lossy(&err).trim().to_string()))
    };
    let (status, err) = tokio::time::timeout(LIMIT, work)
        .await
        .map_err(|_| format!("not finished within {} s", LIMIT.as_secs()))??;
    match status {
        Some(0) => {
            let bytes = pending.bytes();
            let path = pending.commit(mac, keep).await.map_err(|e| e.to_string())?;
            Ok(Some((path, bytes)))
        }
        Some(NOTHING_YET) => Ok(None),
        Some(s) => Err(format!("exit status {s}: {err}")),
        None => Err(format!("the connection ended first {err}")
            .trim()
            .to_string()),
    }
}

/// The schedule, on the watcher's session with the server: one snapshot every `every`
/// while the session lasts (the caller aborts it with the session).
pub async fn scheduled(engine: Engine, mac: Mac, c: Conn, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = take(&engine, mac, &c, Why::Scheduled).await {
            tracing::debug!("scheduled snapshot of {mac}: {e}");
        }
    }
}
