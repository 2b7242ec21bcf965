//! The headless face: one line per event on stdout, as readable text or JSON lines.
//!
//! Text: `HH:MM:SS.mmm  node-3             dhcp-discover     DHCP discover arch=7`.
//! JSON: the [`Event`] serialised, one object per line. Log lines streamed from nodes go
//! to the node's ring buffer (shown by the TUI and `pxelab nodes`), never to this stream,
//! to keep the stream one line per boot step.
//!
//! Under a DHCP storm this face formats thousands of lines a second, so it is written
//! for that (a profile at 10,000 DORA/s had a third of pxelab's CPU here): lines are
//! built in one reused buffer, the `HH:MM:` prefix is computed once a minute instead of
//! through a time-zone lookup per line, and output goes through a buffer flushed
//! whenever no further event is waiting (so a quiet stream is still line by line).

use std::io::Write;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::engine::snapshot::NodeView;
use crate::engine::Event;

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

/// Local `HH:MM:` of the minute starting at `minute * 60_000` ms since the epoch.
/// Time-zone offsets are whole minutes, so the seconds and milliseconds of any instant
/// in that minute follow arithmetically.
fn minute_prefix(minute: u64) -> String {
    let t = chrono::DateTime::<chrono::Local>::from(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(minute.saturating_mul(60)),
    );
    t.format("%H:%M:").to_string()
}

thread_local! {
    /// The last minute formatted by [`minute_prefix`] on this thread.
    static MINUTE: std::cell::RefCell<(u64, String)> = const {
        std::cell::RefCell::new((u64::MAX, String::new()))
    };
}

/// Appends `HH:MM:SS.mmm` (local time) of `at_ms` to `out`.
fn push_clock(out: &mut String, at_ms: u64) {
    use std::fmt::Write as _;
    let minute = at_ms / 60_000;
    MINUTE.with(|m| {
        let mut m = m.borrow_mut();
        if m.0 != minute {
            *m = (minute, minute_prefix(minute));
        }
        out.push_str(&m.1);
    });
    let _ = write!(out, "{:02}.{:03}", (at_ms / 1000) % 60, at_ms % 1000);
}

/// Appends `s` to `out`, padded with spaces to `width` characters, with control
/// characters escaped.
fn push_padded(out: &mut String, s: &str, width: usize) {
    let start = out.chars().count();
    push_sanitized(out, s);
    let written = out.chars().count() - start;
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(written)));
}

/// Appends `s` to `out` with control characters escaped.
fn push_sanitized(out: &mut String, s: &str) {
    if s.chars().any(char::is_control) {
        out.push_str(&sanitize(s));
    } else {
        out.push_str(s);
    }
}

/// Appends one event's text line (no trailing newline) to `out`.
fn push_text_line(out: &mut String, ev: &Event) {
    use std::fmt::Write as _;
    push_clock(out, ev.at_ms);
    out.push_str("  ");
    match (&ev.hostname, &ev.mac) {
        (Some(h), _) => push_padded(out, h, 17),
        (None, Some(m)) => {
            let _ = write!(out, "{m:<17}");
        }
        (None, None) => push_padded(out, "-", 17),
    }
    out.push_str("  ");
    push_padded(out, ev.kind.name(), 18);
    out.push(' ');
    push_sanitized(out, &ev.kind.describe());
}

/// Formats one event as a text line (no trailing newline):
/// `HH:MM:SS.mmm  <hostname or MAC, 17 wide>  <kind, 18 wide> <description>`.
pub fn text_line(ev: &Event) -> String {
    let mut out = String::with_capacity(96);
    push_text_line(&mut out, ev);
    out
}

/// Formats one event as a JSON line (no trailing newline): the [`Event`] with its kind
/// flattened, e.g. `{"seq":3,"at_ms":…,"mac":"…","hostname":"node-1","event":"http-fetch","path":…}`.
pub fn json_line(ev: &Event) -> String {
    serde_json::to_string(ev)
        .unwrap_or_else(|e| format!("{{\"event\":\"encode-error\",\"error\":\"{e}\"}}"))
}

/// The line for one event in `format`; `None` for events this face leaves out (log lines).
pub fn event_line(format: Format, ev: &Event) -> Option<String> {
    let mut out = String::new();
    push_event_line(&mut out, format, ev).then_some(out)
}

/// Appends the line for one event in `format` (no newline) to `out`; false (nothing
/// appended) for events this face leaves out (log lines).
fn push_event_line(out: &mut String, format: Format, ev: &Event) -> bool {
    if ev.kind.is_node_local() {
        return false;
    }
    match format {
        Format::Text => push_text_line(out, ev),
        Format::Json => out.push_str(&json_line(ev)),
    }
    true
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
        "{:<17}  {:<16}  {:<10}  {:<14}  {:<15}  {:<24}  {}\n",
        "MAC", "HOSTNAME", "ROLE", "STATE", "IP", "ARCH · BOOT", "LAST EVENT"
    );
    for n in nodes {
        let ip = n.ip.map(|i| i.to_string());
        out.push_str(&sanitize(&format!(
            "{:<17}  {:<16}  {:<10}  {:<14}  {:<15}  {:<24}  {}",
            n.mac,
            n.hostname.as_deref().unwrap_or("-"),
            n.role.as_deref().unwrap_or("-"),
            n.state.name(),
            ip.as_deref().unwrap_or("-"),
            n.firmware(),
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
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let mut line = String::with_capacity(256);
    let mut stop_by: Option<tokio::time::Instant> = None;
    let mut carry: Option<Result<Event, RecvError>> = None;
    loop {
        let ev = if let Some(c) = carry.take() {
            c
        } else {
            match stop_by {
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
            }
        };
        // This event, then whatever else is already waiting (bounded), then one flush.
        let mut next = Some(ev);
        let mut closed = false;
        let mut batch = 0;
        for _ in 0..BATCH_MAX {
            let Some(ev) = next.take() else { break };
            batch += 1;
            line.clear();
            match ev {
                Ok(ev) => {
                    if !push_event_line(&mut line, format, &ev) {
                        next = waiting(&mut rx);
                        continue;
                    }
                }
                Err(RecvError::Lagged(n)) => line.push_str(&lagged_line(format, n)),
                Err(RecvError::Closed) => {
                    closed = true;
                    break;
                }
            }
            line.push('\n');
            if out.write_all(line.as_bytes()).is_err() {
                // stdout closed (e.g. piped into `head`): stop quietly.
                cancel.cancel();
                return Ok(());
            }
            next = waiting(&mut rx);
        }
        if out.flush().is_err() {
            cancel.cancel();
            return Ok(());
        }
        if closed {
            break;
        }
        if let Some(pending) = next {
            // The batch limit was reached with an event in hand: print it next round.
            carry = Some(pending);
        } else if batch > 1 && stop_by.is_none() {
            // Events are coming in bursts: let the next ones gather instead of being
            // woken for each (a wake-up across threads per event was a sixth of
            // pxelab's CPU under a DHCP storm). A lone event is still printed at once.
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(COALESCE) => {}
            }
        }
    }
    let _ = out.flush();
    Ok(())
}

/// At most this many waiting events are written between two flushes.
const BATCH_MAX: usize = 1024;

/// After a burst, how long the face waits for more before reading again: a human does
/// not see 5 ms, and the bus holds [`crate::engine::BUS_CAPACITY`] events meanwhile.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(5);

/// The next event if one is already waiting, as `recv` would have returned it.
fn waiting(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Option<Result<Event, RecvError>> {
    match rx.try_recv() {
        Ok(ev) => Some(Ok(ev)),
        Err(TryRecvError::Empty) => None,
        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EventKind, FetchKind, Source};

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
    fn cached_clock_matches_a_full_local_time_format() {
        // Across minute and hour boundaries, and twice for the same minute (cache hit).
        for at in [
            1_763_750_000_123u64,
            1_763_750_039_999,
            1_763_750_040_000,
            1_763_753_999_001,
            1_763_754_000_000,
            1_763_750_000_123,
            0,
        ] {
            let mut got = String::new();
            push_clock(&mut got, at);
            let t = chrono::DateTime::<chrono::Local>::from(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(at),
            );
            assert_eq!(got, t.format("%H:%M:%S%.3f").to_string(), "{at}");
        }
    }

    #[test]
    fn mac_display_honours_width() {
        let m: crate::Mac = "52:54:00:0a:bb:cc".parse().unwrap();
        assert_eq!(format!("[{m:<19}]"), "[52:54:00:0a:bb:cc  ]");
        assert_eq!(format!("[{m:>18}]"), "[ 52:54:00:0a:bb:cc]");
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
            failure_class: None,
            failure_reason: None,
            stall: None,
            boot_started_ms: None,
            state_since_ms: None,
            boot: 0,
            last_event_ms: None,
            last_event: Some("HTTP 200".into()),
            cpu: Some(crate::config::Arch::Aarch64),
            boot_path: Some(crate::config::BootPath::PiBootloader),
        };
        let t = node_table(&[n]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("MAC                HOSTNAME"));
        assert_eq!(
            lines[1],
            "52:54:00:00:00:01  node-1            k3s-server  kernel          10.0.0.5         aarch64 · Pi bootloader   HTTP 200"
        );
        assert_eq!(node_table(&[]).lines().count(), 1);
    }
}
