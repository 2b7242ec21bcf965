//! The simulated node's sshd (russh server side): presents the node's host key, lets in
//! only the authorised keys, and runs the few commands a watcher uses — `tail`/`cat` of
//! `/var/log/messages` and `/var/log/k3s.log` (following with `-f`/`-F`),
//! `tiny-cloud --bootstrap status`, `hostname`, `reboot` and `poweroff`, and on the k3s
//! server `k3s kubectl get nodes -o json`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Handle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::cluster::Cluster;
use super::logs::NodeLogs;

mod commands;

pub use commands::effective_command;
use commands::run_command;

/// What the node's sshd knows.
#[derive(Clone)]
pub struct SshdState {
    /// The node's log files.
    pub logs: NodeLogs,
    /// The cluster (for kubectl on the server).
    pub cluster: Cluster,
    /// Whether this node runs the k3s server.
    pub k3s_server: bool,
    /// Keys allowed to log in.
    pub authorized: Vec<PublicKey>,
    /// The login user.
    pub user: String,
    /// The machine `reboot` and `poweroff` act on (none: they are refused).
    pub machine: Option<crate::sim::node::Machine>,
}

/// Starts the sshd on `listener` until `cancel` fires. Sessions end with it.
pub fn spawn(
    listener: TcpListener,
    host_key: PrivateKey,
    state: SshdState,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-OpenSSH_9.9".into()),
        keys: vec![host_key],
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(600)),
        nodelay: true,
        ..Default::default()
    });
    let state = Arc::new(state);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = cancel.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let handler = Sshd {
                state: state.clone(),
                peer,
                channels: HashMap::new(),
                cancel: cancel.child_token(),
            };
            let (config, cancel) = (config.clone(), cancel.clone());
            tokio::spawn(async move {
                let guard = handler.cancel.clone().drop_guard();
                match russh::server::run_stream(config, stream, handler).await {
                    Ok(session) => {
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            _ = session => {}
                        }
                    }
                    Err(e) => tracing::debug!("sim sshd: session from {peer} failed: {e}"),
                }
                drop(guard);
            });
        }
    })
}

struct Sshd {
    state: Arc<SshdState>,
    peer: SocketAddr,
    channels: HashMap<ChannelId, CancellationToken>,
    cancel: CancellationToken,
}

impl russh::server::Handler for Sshd {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.allowed(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.allowed(user, key.public_key) {
            Auth::Accept
        } else {
            tracing::debug!("sim sshd: refused key for {user} from {}", self.peer);
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels
            .insert(channel.id(), self.cancel.child_token());
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.channels.remove(&channel) {
            c.cancel();
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let cmd = String::from_utf8_lossy(data).to_string();
        session.channel_success(channel)?;
        let handle = session.handle();
        let state = self.state.clone();
        let cancel = self
            .channels
            .get(&channel)
            .cloned()
            .unwrap_or_else(|| self.cancel.child_token());
        tokio::spawn(async move {
            let code = run_command(&cmd, &state, &handle, channel, &cancel).await;
            let _ = handle.exit_status_request(channel, code).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }
}

impl Sshd {
    fn allowed(&self, user: &str, key: &PublicKey) -> bool {
        user == self.state.user
            && self
                .state
                .authorized
                .iter()
                .any(|k| k.key_data() == key.key_data())
    }
}

async fn out(handle: &Handle, ch: ChannelId, text: String) -> bool {
    handle.data(ch, text.into_bytes()).await.is_ok()
}

async fn err(handle: &Handle, ch: ChannelId, text: String) -> bool {
    handle.extended_data(ch, 1, text.into_bytes()).await.is_ok()
}
