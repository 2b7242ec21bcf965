//! The headless face: one line per event on stdout, as readable text or JSON lines.
//!
//! Text: `HH:MM:SS.mmm  node-3             dhcp-discover     DHCP discover arch=7`.
//! JSON: the [`Event`] serialised, one object per line. Log lines streamed from nodes go
//! to the node's ring buffer (shown by the TUI and `pxelab nodes`), never to this stream,
//! to keep the stream one line per boot step.

use std::io::Write;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::engine::{Event, EventKind};

/// Output format of the headless face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Formats one event as a text line (no trailing newline).
pub fn text_line(ev: &Event) -> String {
    let t = chrono::DateTime::<chrono::Local>::from(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ev.at_ms),
    );
    let who = match (&ev.hostname, &ev.mac) {
        (Some(h), _) => h.clone(),
        (None, Some(m)) => m.to_string(),
        (None, None) => "-".to_string(),
    };
    format!(
        "{}  {:<17}  {:<18} {}",
        t.format("%H:%M:%S%.3f"),
        who,
        ev.kind.name(),
        ev.kind.describe()
    )
}

/// Formats one event as a JSON line (no trailing newline).
pub fn json_line(ev: &Event) -> String {
    serde_json::to_string(ev)
        .unwrap_or_else(|e| format!("{{\"event\":\"encode-error\",\"error\":\"{e}\"}}"))
}

/// Prints every event until `cancel` fires. A face that falls behind says how many
/// events it missed instead of stalling the engine.
pub async fn run(
    mut rx: tokio::sync::broadcast::Receiver<Event>,
    cancel: CancellationToken,
    format: Format,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => break,
            r = rx.recv() => r,
        };
        let line = match ev {
            Ok(ev) if matches!(ev.kind, EventKind::LogLine { .. }) => continue,
            Ok(ev) => match format {
                Format::Text => text_line(&ev),
                Format::Json => json_line(&ev),
            },
            Err(RecvError::Lagged(n)) => match format {
                Format::Text => format!("-- {n} events skipped (output too slow) --"),
                Format::Json => format!("{{\"event\":\"lagged\",\"skipped\":{n}}}"),
            },
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
