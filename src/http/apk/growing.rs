//! A body read from a file while its download is still writing it.
//!
//! Why: a node asking for a package the cache does not have yet would otherwise hear
//! nothing until the whole file arrived from the mirror, and a big package over a slow
//! link outlasts the boot server's idle limit (60 s, `src/http/conn.rs`), which then cuts
//! every node waiting for it. Here each waiter gets the bytes as they land on disk.
//!
//! The last byte is held back until the download is whole and checked
//! ([`super::verify`]): a damaged or cut download ends the body with an error (the
//! connection is cut, the client sees a short transfer), so no client ever receives a
//! whole body of a file the cache refused. Memory stays at one chunk per waiter.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;

use super::store::Growth;

/// Bytes per read.
const CHUNK: u64 = 256 * 1024;

/// Told how a body ended: whole, or cut with the reason (not told when the client left).
pub type OnEnd = Box<dyn FnOnce(Result<(), String>) + Send>;

struct State {
    rx: watch::Receiver<Growth>,
    file: Arc<std::fs::File>,
    offset: u64,
    ended: bool,
    on_end: Option<OnEnd>,
}

impl State {
    /// Ends the body with an error (the connection is cut).
    fn fail(mut self, why: String) -> Option<(std::io::Result<Bytes>, State)> {
        self.ended = true;
        if let Some(f) = self.on_end.take() {
            f(Err(why.clone()));
        }
        Some((Err(failed(why)), self))
    }
}

fn failed(why: String) -> std::io::Error {
    std::io::Error::other(why)
}

/// The body of a file being downloaded (its [`Growth`] has a file).
pub fn body(
    rx: watch::Receiver<Growth>,
    on_end: OnEnd,
) -> Option<impl Stream<Item = std::io::Result<Bytes>>> {
    let file = rx.borrow().file.clone()?;
    let state = State {
        rx,
        file,
        offset: 0,
        ended: false,
        on_end: Some(on_end),
    };
    Some(futures_util::stream::unfold(state, next))
}

async fn next(mut s: State) -> Option<(std::io::Result<Bytes>, State)> {
    if s.ended {
        return None;
    }
    loop {
        let (written, done) = {
            let g = s.rx.borrow_and_update();
            (g.written, g.done.clone())
        };
        let readable = match &done {
            Some(Ok(_)) => written,
            Some(Err(e)) => return s.fail(e.clone()),
            // Hold the last byte back until the file is checked.
            None => written.saturating_sub(1),
        };
        if s.offset < readable {
            let n = (readable - s.offset).min(CHUNK) as usize;
            let (file, at) = (Arc::clone(&s.file), s.offset);
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                file.read_exact_at(&mut buf, at).map(|()| buf)
            })
            .await
            .unwrap_or_else(|e| Err(failed(e.to_string())));
            return match read {
                Ok(buf) => {
                    s.offset += n as u64;
                    // The last bytes: counted before the client has them all.
                    if done.is_some() && s.offset == readable {
                        if let Some(f) = s.on_end.take() {
                            f(Ok(()));
                        }
                    }
                    Some((Ok(Bytes::from(buf)), s))
                }
                Err(e) => s.fail(format!("reading the download: {e}")),
            };
        }
        if done.is_some() {
            if let Some(f) = s.on_end.take() {
                f(Ok(()));
            }
            return None;
        }
        if s.rx.changed().await.is_err() {
            return s.fail("the download stopped".into());
        }
    }
}
