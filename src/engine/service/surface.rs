//! The one command surface: a [`Commands`] handle every face holds (console, admin API,
//! CLI through the API, the boot policy). It sends a [`Command`] to the engine service
//! and awaits its reply, so a command means the same thing whichever face sent it.

use tokio::sync::{mpsc, oneshot};

use super::command::{Command, CommandError, Reply};

/// Commands waiting for the service at most; a sender beyond waits (faces) or drops
/// (the boot policy's queued adoptions, asked again at the machine's next request).
const QUEUE: usize = 256;

/// The answer channel of one command.
pub type Answer = oneshot::Sender<Result<Reply, CommandError>>;

/// A command on its way to the service, with where to answer (none for queued ones).
#[derive(Debug)]
pub struct Pending {
    /// The command.
    pub command: Command,
    /// Where the reply goes.
    pub reply: Option<Answer>,
}

impl Pending {
    /// Answers the sender (if it still waits).
    pub fn answer(self, r: Result<Reply, CommandError>) {
        if let Some(tx) = self.reply {
            let _ = tx.send(r);
        }
    }
}

/// The receiving end: what the service (or a test's recording sink) reads.
pub struct CommandQueue {
    rx: mpsc::Receiver<Pending>,
}

impl CommandQueue {
    /// The next command; `None` once every [`Commands`] handle is gone.
    pub async fn recv(&mut self) -> Option<Pending> {
        self.rx.recv().await
    }

    /// The next command if one is waiting.
    pub fn try_recv(&mut self) -> Option<Pending> {
        self.rx.try_recv().ok()
    }
}

/// The handle faces send commands through: cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Commands {
    tx: Option<mpsc::Sender<Pending>>,
}

impl Commands {
    /// A connected handle and the queue it feeds.
    pub fn channel() -> (Commands, CommandQueue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Commands { tx: Some(tx) }, CommandQueue { rx })
    }

    /// A handle with no service behind it: every command fails with `NoService`.
    pub fn detached() -> Commands {
        Commands { tx: None }
    }

    fn no_service(c: &Command) -> CommandError {
        CommandError::NoService { command: c.name() }
    }

    /// Sends `command` and waits for its reply.
    pub async fn send(&self, command: Command) -> Result<Reply, CommandError> {
        let Some(tx) = &self.tx else {
            return Err(Self::no_service(&command));
        };
        let (reply, rx) = oneshot::channel();
        let name = command.name();
        tx.send(Pending {
            command,
            reply: Some(reply),
        })
        .await
        .map_err(|_| CommandError::NoService { command: name })?;
        rx.await
            .unwrap_or(Err(CommandError::NoService { command: name }))
    }

    /// [`Commands::send`] from a thread that may block (never an async task).
    pub fn send_blocking(&self, command: Command) -> Result<Reply, CommandError> {
        let Some(tx) = &self.tx else {
            return Err(Self::no_service(&command));
        };
        let (reply, rx) = oneshot::channel();
        let name = command.name();
        tx.blocking_send(Pending {
            command,
            reply: Some(reply),
        })
        .map_err(|_| CommandError::NoService { command: name })?;
        rx.blocking_recv()
            .unwrap_or(Err(CommandError::NoService { command: name }))
    }

    /// Queues `command` without waiting for it or its reply (the boot policy, on a
    /// wire server's receive path). Returns whether it was queued.
    pub fn queue(&self, command: Command) -> bool {
        self.tx.as_ref().is_some_and(|tx| {
            tx.try_send(Pending {
                command,
                reply: None,
            })
            .is_ok()
        })
    }
}
