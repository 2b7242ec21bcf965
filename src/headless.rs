//! The headless face: one line per event on stdout, as readable text or JSON lines.
//!
//! Text: `HH:MM:SS.mmm  node-3             dhcp-discover     DHCP discover arch=7`.
//! JSON: the [`Event`] serialised, one object per line. Log lines streamed from nodes go
//! to the node's ring buffer (shown by the TUI and `pxelab nodes`), never to this stream,
//! to keep the stream one line per boot step.

use std::io::Write;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::engine::snapshot::NodeView;
use crate::engine::{Event, EventKind};

/// Output format of the headless face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Replaces control characters (a node's log line or a request path could carry
/// terminal escape sequences) with their escaped form.
fn sanitize(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Formats one event as a text line (no trailing newline):
/// `HH:MM:SS.mmm  <hostname or MAC, 17 wide>  <kind, 18 wide> <description>`.
pub fn text_line(ev: &Event) -> String {
    let t = chrono::DateTime::<chrono::Local>::from(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ev.at_ms),
    );
    let who = match (&ev.hostname, &ev.mac) {
        (Some(h), _) => h.clone(),
        (None, Some(m)) => m.to_string(),
        (None, None) => "-".to_string(),
    };
    sanitize(&format!(
        "{}  {:<17}  {:<18} {}",
        t.format("%H:%M:%S%.3f"),
        who,
        ev.kind.name(),
        ev.kind.describe()
    ))
}

/// Formats one event as a JSON line (no trailing newline): the [`Event`] with its kind
/// flattened, e.g. `{"seq":3,"at_ms":…,"mac":"…","hostname":"node-1","event":"http-fetch","path":…}`.
pub fn json_line(ev: &Event) -> String {
    serde_json::to_string(ev)
        .unwrap_or_else(|e| format!("{{\"event\":\"encode-error\",\"error\":\"{e}\"}}"))
}

/// The line for one event in `format`; `None` for events this face leaves out (log lines).
pub fn event_line(format: Format, ev: &Event) -> Option<String> {
    if matches!(ev.kind, EventKind::LogLine { .. }) {
        return None;
    }
    Some(match format {
        Format::Text => text_line(ev),
        Format::Json => json_line(ev),
    })
}

/// The line telling that `n` events were skipped because the output was too slow.
pub fn lagged_line(format: Format, n: u64) -> String {
    match format {
        Format::Text => format!("-- {n} events skipped (output too slow) --"),
        Format::Json => format!("{{\"event\":\"lagged\",\"skipped\":{n}}}"),
    }
}

/// The nodes as a table for `pxelab nodes`: a header and one row per node.
pub fn node_table(nodes: &[NodeView]) -> String {
    let mut out = format!(
        "{:<17}  {:<16}  {:<10}  {:<14}  {:<15}  {}\n",
        "MAC", "HOSTNAME", "ROLE", "STATE", "IP", "LAST EVENT"
    );
    for n in nodes {
        let ip = n.ip.map(|i| i.to_string());
        out.push_str(&sanitize(&format!(
            "{:<17}  {:<16}  {:<10}  {:<14}  {:<15}  {}",
            n.mac,
            n.hostname.as_deref().unwrap_or("-"),
            n.role.as_deref().unwrap_or("-"),
            n.state.name(),
            ip.as_deref().unwrap_or("-"),
            n.last_event.as_deref().unwrap_or("-"),
        )));
        out.push('\n');
    }
    out
}

/// After the stop signal, events keep being printed (servers reporting that they went
/// down) until none came for this long…
const DRAIN_QUIET: std::time::Duration = std::time::Duration::from_millis(300);
/// …or this long passed.
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_millis(1500);

/// Prints every event until `cancel` fires, then the stragglers of the shutdown (e.g.
/// `server-down`) for a short bounded time. A face that falls behind says how many
/// events it missed instead of stalling the engine.
pub async fn run(
    mut rx: tokio::sync::broadcast::Receiver<Event>,
    cancel: CancellationToken,
    format: Format,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut stop_by: Option<tokio::time::Instant> = None;
    loop {
        let ev = match stop_by {
            None => tokio::select! {
                _ = cancel.cancelled() => {
                    stop_by = Some(tokio::time::Instant::now() + DRAIN_MAX);
                    continue;
                }
                r = rx.recv() => r,
            },
            Some(deadline) => {
                let until = deadline.min(tokio::time::Instant::now() + DRAIN_QUIET);
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(r) => r,
                    Err(_) => break,
                }
            }
        };
        let line = match ev {
            Ok(ev) => match event_line(format, &ev) {
                Some(l) => l,
                None => continue,
            },
            Err(RecvError::Lagged(n)) => lagged_line(format, n),
            Err(RecvError::Closed) => break,
        };
        let mut out = stdout.lock();
        if writeln!(out, "{line}").is_err() {
            // stdout closed (e.g. piped into `head`): stop quietly.
            cancel.cancel();
            break;
        }
        let _ = out.flush();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FetchKind, Source};

    fn ev(mac: Option<&str>, hostname: Option<&str>, kind: EventKind) -> Event {
        Event {
            seq: 7,
            at_ms: 1_763_750_000_123,
            mac: mac.map(|m| m.parse().unwrap()),
            hostname: hostname.map(str::to_string),
            kind,
        }
    }

    fn fetch() -> EventKind {
        EventKind::HttpFetch {
            path: "/assets/vmlinuz-lts".into(),
            client: "10.0.0.5".parse().unwrap(),
            what: FetchKind::Kernel,
            status: 200,
            bytes: 1234,
            ms: 56,
        }
    }

    /// `HH:MM:SS.mmm` then two spaces.
    fn assert_time_prefix(line: &str) {
        let b = line.as_bytes();
        for (i, c) in b[..12].iter().enumerate() {
            match i {
                2 | 5 => assert_eq!(*c, b':', "{line}"),
                8 => assert_eq!(*c, b'.', "{line}"),
                _ => assert!(c.is_ascii_digit(), "{line}"),
            }
        }
        assert_eq!(&line[12..14], "  ", "{line}");
    }

    #[test]
    fn text_line_has_time_who_kind_and_description_in_columns() {
        let line = text_line(&ev(Some("52:54:00:00:00:01"), Some("node-1"), fetch()));
        assert_time_prefix(&line);
        let rest = &line[14..];
        assert_eq!(&rest[..19], "node-1             ", "{line}");
        assert_eq!(&rest[19..38], "http-fetch         ", "{line}");
        assert_eq!(
            &rest[38..],
            "HTTP 200 Kernel /assets/vmlinuz-lts 1234 B in 56 ms to 10.0.0.5"
        );
        // Without hostname: the MAC; without either: a dash.
        let line = text_line(&ev(Some("52:54:00:00:00:01"), None, EventKind::NodeHeld));
        assert_eq!(&line[14..33], "52:54:00:00:00:01  ");
        assert!(line.ends_with("node-held          unknown MAC held in the iPXE wait loop"));
        let line = text_line(&ev(None, None, EventKind::ConfigLoaded { nodes: 3 }));
        assert_eq!(&line[14..16], "- ");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn text_line_escapes_terminal_control_characters() {
        let line = text_line(&ev(
            None,
            None,
            EventKind::Refused {
                source: Source::Http,
                client: "10.0.0.9".into(),
                what: "/x\u{1b}[2J".into(),
                reason: "nothing is served here".into(),
            },
        ));
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("\\u{1b}[2J"));
    }

    #[test]
    fn json_line_is_the_event_flattened_and_round_trips() {
        let e = ev(Some("52:54:00:00:00:01"), Some("node-1"), fetch());
        let line = json_line(&e);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["at_ms"], 1_763_750_000_123u64);
        assert_eq!(v["mac"], "52:54:00:00:00:01");
        assert_eq!(v["hostname"], "node-1");
        assert_eq!(v["event"], "http-fetch");
        assert_eq!(v["what"], "kernel");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], 1234);
        assert_eq!(v["client"], "10.0.0.5");
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
        // Absent MAC and hostname are left out, not null.
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&ev(None, None, EventKind::NodeHeld))).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
        assert_eq!(v["event"], "node-held");
    }

    #[test]
    fn log_lines_stay_off_the_stream_and_lag_is_reported() {
        let log = ev(
            Some("52:54:00:00:00:01"),
            None,
            EventKind::LogLine {
                file: "messages".into(),
                line: "x".into(),
            },
        );
        assert_eq!(event_line(Format::Text, &log), None);
        assert_eq!(event_line(Format::Json, &log), None);
        assert!(event_line(Format::Json, &ev(None, None, fetch())).is_some());
        assert_eq!(
            lagged_line(Format::Text, 5),
            "-- 5 events skipped (output too slow) --"
        );
        let v: serde_json::Value = serde_json::from_str(&lagged_line(Format::Json, 5)).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["skipped"].as_u64()),
            (Some("lagged"), Some(5))
        );
    }

    #[test]
    fn node_table_has_a_header_and_one_row_per_node() {
        let n = NodeView {
            mac: "52:54:00:00:00:01".parse().unwrap(),
            hostname: Some("node-1".into()),
            role: Some("k3s-server".into()),
            ip: Some("10.0.0.5".parse().unwrap()),
            known: true,
            state: crate::engine::NodeState::Kernel,
            cloud_phase: None,
            failure: None,
            boot_started_ms: None,
            last_event_ms: None,
            last_event: Some("HTTP 200".into()),
        };
        let t = node_table(&[n]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("MAC                HOSTNAME"));
        assert_eq!(
            lines[1],
            "52:54:00:00:00:01  node-1            k3s-server  kernel          10.0.0.5         HTTP 200"
        );
        assert_eq!(node_table(&[]).lines().count(), 1);
    }
}
