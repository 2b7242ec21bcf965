//! A file body read in large chunks, straight from the page cache when it can be, else
//! on the blocking pool one chunk ahead of the socket.
//!
//! `tokio::fs::File` behind a `ReaderStream` costs a blocking-pool round trip per
//! 64 KiB plus a copy from the file's own buffer into the stream's: at loopback speed
//! that overhead, not the socket, bounded the asset throughput (see BENCHMARKS.md).
//! Here each chunk is read straight into the `Vec` that becomes the body's `Bytes`
//! (no intermediate buffer). Boot assets are read by every node, so they are nearly
//! always in the page cache: each chunk is first tried with `preadv2(RWF_NOWAIT)`
//! (Linux 4.14+), which copies what is cached without ever blocking, right on the async
//! worker; only a chunk that would wait for the disk goes to the blocking pool, and then
//! the next read is started as soon as a chunk is handed to hyper, so disk reads
//! overlap the socket writes. (A profile of 50 parallel downloads had ~10 % of pxelab's
//! time in blocking-pool hand-offs before this.)
//!
//! Memory stays bounded in a boot storm: while more than [`BIG_TRANSFERS`] bodies are
//! streaming at once, new reads use [`SMALL_CHUNK`] and no read-ahead (64 KiB per
//! transfer, as before), so a thousand parallel initrd fetches hold ~64 MB, not ~512 MB.

use std::future::Future;
use std::io::IoSliceMut;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use rustix::io::{preadv2, Errno, ReadWriteFlags};
use tokio::task::JoinHandle;

/// Bytes per read while few transfers run. Two chunks per transfer are in memory at
/// most (one with hyper, one being read ahead).
pub const CHUNK: usize = 256 * 1024;

/// Bytes per read, without read-ahead, while many transfers run.
pub const SMALL_CHUNK: usize = 64 * 1024;

/// Up to this many concurrent transfers use [`CHUNK`] and read ahead.
pub const BIG_TRANSFERS: usize = 64;

/// Bodies streaming right now, in this process.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Whether `preadv2(RWF_NOWAIT)` works here (cleared on the first "not supported").
static NOWAIT_READS: AtomicBool = AtomicBool::new(true);

/// Streams `remaining` bytes of a file from an offset.
pub struct FileChunks {
    file: Arc<std::fs::File>,
    offset: u64,
    remaining: u64,
    pending: Option<JoinHandle<std::io::Result<Bytes>>>,
}

/// The error for a file that ended before the promised length.
fn shrank() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "boot asset shrank while it was being sent",
    )
}

impl FileChunks {
    /// Streams `count` bytes of `file` starting at byte `start`.
    pub fn new(file: std::fs::File, start: u64, count: u64) -> FileChunks {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        FileChunks {
            file: Arc::new(file),
            offset: start,
            remaining: count,
            pending: None,
        }
    }

    /// Whether few enough transfers run for big chunks and read-ahead.
    fn roomy() -> bool {
        ACTIVE.load(Ordering::Relaxed) <= BIG_TRANSFERS
    }

    /// The size of the next read.
    fn next_len(&self) -> usize {
        let chunk = if Self::roomy() { CHUNK } else { SMALL_CHUNK };
        self.remaining.min(chunk as u64) as usize
    }

    /// The next chunk if (some of) it is in the page cache, without blocking; `None`
    /// when the read would wait for the disk (or `RWF_NOWAIT` is not supported).
    fn try_cached(&mut self) -> Option<Bytes> {
        if self.remaining == 0 || !NOWAIT_READS.load(Ordering::Relaxed) {
            return None;
        }
        let mut buf = vec![0u8; self.next_len()];
        let read = preadv2(
            &*self.file,
            &mut [IoSliceMut::new(&mut buf)],
            self.offset,
            ReadWriteFlags::NOWAIT,
        );
        match read {
            Ok(got) if got > 0 => {
                buf.truncate(got);
                self.offset += got as u64;
                self.remaining -= got as u64;
                Some(Bytes::from(buf))
            }
            Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => {
                NOWAIT_READS.store(false, Ordering::Relaxed);
                None
            }
            // Not cached (EAGAIN), end of file (0) or an error: the blocking read
            // below waits, or reports it.
            _ => None,
        }
    }

    /// Starts reading the next chunk on the blocking pool, if any is left.
    fn start_next(&mut self) {
        if self.remaining == 0 || self.pending.is_some() {
            return;
        }
        let n = self.next_len();
        let offset = self.offset;
        self.offset += n as u64;
        self.remaining -= n as u64;
        let file = Arc::clone(&self.file);
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            let mut got = 0;
            while got < n {
                match file.read_at(&mut buf[got..], offset + got as u64) {
                    Ok(0) => return Err(shrank()),
                    Ok(k) => got += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(Bytes::from(buf))
        }));
    }
}

impl Stream for FileChunks {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pending.is_none() {
            if self.remaining == 0 {
                return Poll::Ready(None);
            }
            if let Some(bytes) = self.try_cached() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            self.start_next();
        }
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
                // The file is being read from disk: read ahead while hyper writes this.
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
    use std::io::Write;

    async fn collect(file: std::fs::File, start: u64, count: u64) -> std::io::Result<Vec<u8>> {
        let mut s = FileChunks::new(file, start, count);
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
        let got = collect(f, 100, (CHUNK + 10) as u64).await.unwrap();
        assert_eq!(got, &data[100..100 + CHUNK + 10]);
    }

    #[tokio::test]
    async fn the_blocking_path_streams_the_same_bytes() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 77)).map(|i| (i % 241) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let mut s = FileChunks::new(f, 5, (CHUNK * 2) as u64);
        let mut out = Vec::new();
        // Only the blocking reads (with read-ahead), as for a file not in the cache.
        loop {
            s.start_next();
            let Some(p) = s.pending.take() else { break };
            out.extend_from_slice(&p.await.unwrap().unwrap());
        }
        assert_eq!(out, &data[5..5 + CHUNK * 2]);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn a_file_shorter_than_promised_is_an_error_not_a_short_body() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 1000]).unwrap();
        let err = collect(f, 0, 5000).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn an_empty_range_ends_at_once() {
        let f = tempfile::tempfile().unwrap();
        assert!(collect(f, 0, 0).await.unwrap().is_empty());
    }
}
