//! A fake Alpine mirror on 127.0.0.1 (unprivileged port): serves files from a map,
//! honours `Range: bytes=N-`, answers 404 for the rest, and can cut a download short
//! (full Content-Length, then close) to exercise truncation and resume.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    /// Path → bytes to send before closing (once).
    cut: HashMap<String, usize>,
    /// (path, Range header) of each request, in order.
    log: Vec<(String, Option<String>)>,
}

/// The running mirror; stops on drop.
pub struct Mirror {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Mirror {
    pub fn start() -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: the test drops the mirror within minutes; this guards a leak.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !sp.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => serve(s, &st),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Mirror {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The base URL (what `--mirror` takes).
    pub fn url(&self) -> String {
        format!("http://{}/alpine", self.addr)
    }

    /// Serves `bytes` at `/alpine/{path}`.
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        let mut s = self.state.lock().unwrap();
        s.files.insert(format!("/alpine/{path}"), bytes);
    }

    /// The next download of `path` stops after `n` bytes.
    pub fn cut_once(&self, path: &str, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.cut.insert(format!("/alpine/{path}"), n);
    }

    /// The Range headers sent for `path`, one per request.
    pub fn ranges(&self, path: &str) -> Vec<Option<String>> {
        let want = format!("/alpine/{path}");
        let s = self.state.lock().unwrap();
        s.log
            .iter()
            .filter(|(p, _)| *p == want)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut s: TcpStream, state: &Mutex<State>) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req).into_owned();
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("range")
            .then(|| v.trim().to_string())
    });
    let (body, cut) = {
        let mut st = state.lock().unwrap();
        st.log.push((path.clone(), range.clone()));
        let cut = st.cut.remove(&path);
        (st.files.get(&path).cloned(), cut)
    };
    let Some(body) = body else {
        let _ = s.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
        return;
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let len = body.len();
    let (head, part) = match start {
        Some(n) if n >= len => {
            let h = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            (h, &body[0..0])
        }
        Some(n) => {
            let h = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {n}-{}/{len}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                len - 1,
                len - n
            );
            (h, &body[n..])
        }
        None => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
            );
            (h, &body[..])
        }
    };
    let _ = s.write_all(head.as_bytes());
    let send = cut.map_or(part.len(), |c| c.min(part.len()));
    let _ = s.write_all(&part[..send]);
    let _ = s.flush();
    let _ = s.shutdown(std::net::Shutdown::Both);
}
