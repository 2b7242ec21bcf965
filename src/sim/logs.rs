//! A simulated node's log files, in the formats the real tools write:
//! busybox syslogd's `/var/log/messages` (tiny-cloud via `logger -p local7.<level>`) and
//! k3s's logrus text lines in `/var/log/k3s.log`. Readers can follow a file as it grows.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Which log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFile {
    /// `/var/log/messages`.
    Messages,
    /// `/var/log/k3s.log`.
    K3s,
}

impl LogFile {
    /// The path on the node.
    pub fn path(self) -> &'static str {
        match self {
            LogFile::Messages => "/var/log/messages",
            LogFile::K3s => "/var/log/k3s.log",
        }
    }

    /// The file for a path, if the node has it.
    pub fn from_path(p: &str) -> Option<LogFile> {
        match p {
            "/var/log/messages" => Some(LogFile::Messages),
            "/var/log/k3s.log" => Some(LogFile::K3s),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Files {
    messages: Vec<String>,
    k3s: Option<Vec<String>>,
    hostname: String,
    bootstrap_complete: bool,
    boot_id: String,
    /// Per cent of memory (and of the tmpfs root) the node reports free; 0: the default.
    free_pct: u8,
}

/// The node's log files; cheap to clone, shared with its SSH server.
#[derive(Clone)]
pub struct NodeLogs {
    files: Arc<Mutex<Files>>,
    changed: Arc<watch::Sender<u64>>,
    pid: Arc<std::sync::atomic::AtomicU32>,
}

impl Default for NodeLogs {
    fn default() -> Self {
        Self::new()
    }
}

fn lock(m: &Mutex<Files>) -> std::sync::MutexGuard<'_, Files> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl NodeLogs {
    /// Empty logs; the hostname is `localhost` until tiny-cloud sets it.
    pub fn new() -> NodeLogs {
        let (tx, _) = watch::channel(0);
        NodeLogs {
            files: Arc::new(Mutex::new(Files {
                hostname: "localhost".to_string(),
                boot_id: {
                    let b: [u8; 16] = rand::random();
                    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                    format!(
                        "{}-{}-{}-{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..]
                    )
                },
                ..Files::default()
            })),
            changed: Arc::new(tx),
            pid: Arc::new(std::sync::atomic::AtomicU32::new(2200)),
        }
    }

    /// A new process id (for `tag[PID]`).
    pub fn next_pid(&self) -> u32 {
        self.pid.fetch_add(7, std::sync::atomic::Ordering::Relaxed)
    }

    /// The node's current hostname.
    pub fn hostname(&self) -> String {
        lock(&self.files).hostname.clone()
    }

    /// This boot's `/proc/sys/kernel/random/boot_id`.
    pub fn boot_id(&self) -> String {
        lock(&self.files).boot_id.clone()
    }

    /// Sets the hostname (tiny-cloud's set_hostname).
    pub fn set_hostname(&self, h: &str) {
        lock(&self.files).hostname = h.to_string();
    }

    /// Makes the node report only `pct` per cent of its memory and root free.
    pub fn set_free_pct(&self, pct: u8) {
        lock(&self.files).free_pct = pct.max(1);
    }

    /// `/proc/meminfo` and `df -k /` of a 2 GB board running from RAM.
    pub fn meminfo_and_df(&self) -> (String, String) {
        let pct = match lock(&self.files).free_pct {
            0 => 70,
            p => u64::from(p),
        };
        let (mem, root) = (2_009_876u64, 1_004_938u64);
        let meminfo = format!(
            "MemTotal:        {mem} kB\nMemFree:          {} kB\nMemAvailable:    {} kB\nBuffers:            1024 kB\n",
            mem * pct / 200,
            mem * pct / 100
        );
        let df = format!(
            "Filesystem           1K-blocks      Used Available Use% Mounted on\ntmpfs                {root:>9} {:>9} {:>9} {:>3}% /\n",
            root * (100 - pct) / 100,
            root * pct / 100,
            100 - pct
        );
        (meminfo, df)
    }

    /// Marks tiny-cloud's bootstrap complete.
    pub fn mark_complete(&self) {
        lock(&self.files).bootstrap_complete = true;
    }

    /// `tiny-cloud --bootstrap status`.
    pub fn bootstrap_complete(&self) -> bool {
        lock(&self.files).bootstrap_complete
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Appends a syslog line: `Nov 21 19:09:00 HOST FACILITY.LEVEL TAG: TEXT`.
    pub fn syslog(&self, prio: &str, tag: &str, text: &str) {
        let now = chrono::Local::now().format("%b %e %H:%M:%S");
        {
            let mut f = lock(&self.files);
            let line = format!("{now} {} {prio} {tag}: {text}", f.hostname);
            f.messages.push(line);
        }
        self.bump();
    }

    /// A tiny-cloud action line, as `logger -p local7.<level> -t tiny-cloud/<phase>[PID]`.
    pub fn tiny_cloud(&self, phase: &str, pid: u32, action: &str, status: &str) {
        let level = if status == "failed" { "err" } else { "info" };
        self.syslog(
            &format!("local7.{level}"),
            &format!("tiny-cloud/{phase}[{pid}]"),
            &format!("{action}: {status}"),
        );
    }

    /// Appends a k3s logrus line: `time="RFC3339" level=L msg="M"` plus extra fields.
    pub fn k3s(&self, level: &str, msg: &str, extra: &str) {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        let mut line = format!(
            "time=\"{now}\" level={level} msg=\"{}\"",
            msg.replace('"', "\\\"")
        );
        if !extra.is_empty() {
            line.push(' ');
            line.push_str(extra);
        }
        lock(&self.files)
            .k3s
            .get_or_insert_with(Vec::new)
            .push(line);
        self.bump();
    }

    /// Lines of a file from index `from` on; `None` if the file does not exist yet.
    pub fn lines_from(&self, file: LogFile, from: usize) -> Option<Vec<String>> {
        let f = lock(&self.files);
        let v = match file {
            LogFile::Messages => Some(&f.messages),
            LogFile::K3s => f.k3s.as_ref(),
        }?;
        Some(v.get(from..).map(<[String]>::to_vec).unwrap_or_default())
    }

    /// Number of lines of a file (0 if missing).
    pub fn len(&self, file: LogFile) -> usize {
        self.lines_from(file, 0).map(|v| v.len()).unwrap_or(0)
    }

    /// Whether both files are empty.
    pub fn is_empty(&self) -> bool {
        self.len(LogFile::Messages) == 0 && self.len(LogFile::K3s) == 0
    }

    /// A receiver that changes whenever any file grows.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_real_tools() {
        let l = NodeLogs::new();
        l.tiny_cloud("boot", 2345, "expand_root", "skipped");
        l.set_hostname("node-1");
        l.tiny_cloud("main", 2400, "set_hostname", "done");
        l.k3s(
            "info",
            "Connecting to proxy",
            "url=\"wss://10.0.0.1:6443/v1-k3s/connect\"",
        );
        let m = l.lines_from(LogFile::Messages, 0).unwrap();
        assert!(
            m[0].ends_with(" localhost local7.info tiny-cloud/boot[2345]: expand_root: skipped"),
            "{}",
            m[0]
        );
        assert!(m[1].ends_with(" node-1 local7.info tiny-cloud/main[2400]: set_hostname: done"));
        // "Nov 21 19:09:00 " prefix: month, day padded to 2, time.
        assert_eq!(m[0].as_bytes()[3], b' ');
        assert_eq!(&m[0][9..10], ":");
        let k = l.lines_from(LogFile::K3s, 0).unwrap();
        assert!(k[0].starts_with("time=\""));
        assert!(k[0].ends_with(
            "level=info msg=\"Connecting to proxy\" url=\"wss://10.0.0.1:6443/v1-k3s/connect\""
        ));
        assert_eq!(l.lines_from(LogFile::K3s, 5).unwrap().len(), 0);
    }

    #[test]
    fn k3s_log_missing_until_written() {
        let l = NodeLogs::new();
        assert!(l.lines_from(LogFile::K3s, 0).is_none());
    }
}
