//! A file body read in large chunks on the blocking pool, one chunk ahead of the socket.
//!
//! `tokio::fs::File` behind a `ReaderStream` costs a blocking-pool round trip per
//! 64 KiB plus a copy from the file's own buffer into the stream's: at loopback speed
//! that overhead, not the socket, bounded the asset throughput (see BENCHMARKS.md).
//! Here each chunk is read straight into the `Vec` that becomes the body's `Bytes`
//! (no intermediate buffer), and the next read is started as soon as a chunk is
//! handed to hyper, so disk/page-cache reads overlap the socket writes.
//!
//! Memory stays bounded in a boot storm: while more than [`BIG_TRANSFERS`] bodies are
//! streaming at once, new reads use [`SMALL_CHUNK`] and no read-ahead (64 KiB per
//! transfer, as before), so a thousand parallel initrd fetches hold ~64 MB, not ~512 MB.

use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::task::JoinHandle;

/// Bytes per read while few transfers run. Two chunks per transfer are in memory at
/// most (one with hyper, one being read ahead).
pub const CHUNK: usize = 256 * 1024;

/// Bytes per read, without read-ahead, while many transfers run.
pub const SMALL_CHUNK: usize = 64 * 1024;

/// Up to this many concurrent transfers use [`CHUNK`] and read ahead.
pub const BIG_TRANSFERS: usize = 32;

/// Bodies streaming right now, in this process.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Streams `remaining` bytes of a file from its current position.
pub struct FileChunks {
    file: Arc<std::fs::File>,
    remaining: u64,
    pending: Option<JoinHandle<std::io::Result<Bytes>>>,
}

impl FileChunks {
    /// Streams the next `count` bytes of `file` (positioned where the body starts).
    pub fn new(file: std::fs::File, count: u64) -> FileChunks {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        FileChunks {
            file: Arc::new(file),
            remaining: count,
            pending: None,
        }
    }

    /// Whether few enough transfers run for big chunks and read-ahead.
    fn roomy() -> bool {
        ACTIVE.load(Ordering::Relaxed) <= BIG_TRANSFERS
    }

    /// Starts reading the next chunk, if any is left.
    fn start_next(&mut self) {
        if self.remaining == 0 || self.pending.is_some() {
            return;
        }
        let chunk = if Self::roomy() { CHUNK } else { SMALL_CHUNK };
        let n = self.remaining.min(chunk as u64);
        self.remaining -= n;
        let file = Arc::clone(&self.file);
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(n as usize);
            (&*file).take(n).read_to_end(&mut buf)?;
            if (buf.len() as u64) < n {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "boot asset shrank while it was being sent",
                ));
            }
            Ok(Bytes::from(buf))
        }));
    }
}

impl Stream for FileChunks {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.start_next();
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let out = match Pin::new(pending).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(r)) => r,
            Poll::Ready(Err(e)) => Err(std::io::Error::other(e)),
        };
        self.pending = None;
        match out {
            Ok(bytes) => {
                // Read ahead while hyper writes this chunk.
                if Self::roomy() {
                    self.start_next();
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Err(e) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl Drop for FileChunks {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::io::{Seek, Write};

    async fn collect(file: std::fs::File, count: u64) -> std::io::Result<Vec<u8>> {
        let mut s = FileChunks::new(file, count);
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn streams_exactly_the_range_across_chunk_borders() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 1234)).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        f.seek(std::io::SeekFrom::Start(100)).unwrap();
        let got = collect(f, (CHUNK + 10) as u64).await.unwrap();
        assert_eq!(got, &data[100..100 + CHUNK + 10]);
    }

    #[tokio::test]
    async fn a_file_shorter_than_promised_is_an_error_not_a_short_body() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 1000]).unwrap();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        let err = collect(f, 5000).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn an_empty_range_ends_at_once() {
        let f = tempfile::tempfile().unwrap();
        assert!(collect(f, 0).await.unwrap().is_empty());
    }
}
