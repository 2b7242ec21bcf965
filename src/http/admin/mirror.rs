//! What an attached console (`pxelab attach`) mirrors: the event stream, every node's
//! record with the number of the last event in it, and the lab with its secrets
//! redacted.
//!
//! ```text
//! GET /api/events[?logs=1]   SSE; with logs=1 also the node-local events (log lines,
//!                            resource gauges) the console's detail view shows
//! GET /api/state             {seq, snapshot, records, recent}: records hold every
//!                            event <= seq; recent, the last events (the event pane)
//! GET /api/lab/file          {path, lab}: lab.yaml as parsed, secrets masked
//! ```
//!
//! lab.yaml may hold the k3s token inline, and templates or extra arguments may hold
//! other secrets; none of that crosses the API. The token's field is masked, every
//! free-text field goes through [`crate::secrets::mask::mask_patterns`], and, as for
//! every answer, known secret values are masked wherever they are ([`super::scrub`]).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::scrub::Secrets;
use super::AdminState;
use crate::config::{Lab, LabFile};
use crate::engine::EventKind;
use crate::secrets::mask::{mask_patterns, MASK};

/// `GET /api/events` query.
#[derive(Debug, Deserialize, Default)]
pub struct EventsQuery {
    /// `1`: node-local events too (log lines, gauges).
    #[serde(default)]
    pub logs: Option<String>,
}

/// The event bus as SSE frames: `event:` the kind name, `id:` the sequence number,
/// `data:` the event as JSON, secret values masked ([`Secrets`], read again when the lab
/// changes: an adopted node has a password of its own). Node-local events (log lines)
/// stay out unless `logs` (as on the headless stream); a client that falls behind gets
/// one `lagged` frame saying how many it missed.
fn event_stream(
    st: &AdminState,
    logs: bool,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
    let rx = BroadcastStream::new(st.engine.subscribe());
    let (engine, token) = (st.engine.clone(), st.token.clone());
    futures_util::stream::unfold((rx, None::<Secrets>), move |(mut rx, known)| {
        let (engine, token) = (engine.clone(), token.clone());
        async move {
            let mut secrets = match known {
                Some(s) => s,
                None => Secrets::of(&engine, &token).await,
            };
            loop {
                let frame = match rx.next().await? {
                    Ok(ev) if ev.kind.is_node_local() && !logs => continue,
                    Ok(ev) => {
                        if matches!(ev.kind, EventKind::ConfigLoaded { .. }) {
                            secrets = Secrets::of(&engine, &token).await;
                        }
                        let Ok(data) = serde_json::to_string(&ev) else {
                            continue;
                        };
                        SseEvent::default()
                            .event(ev.kind.name())
                            .id(ev.seq.to_string())
                            .data(secrets.scrub(&data))
                    }
                    Err(BroadcastStreamRecvError::Lagged(n)) => SseEvent::default()
                        .event("lagged")
                        .data(format!("{{\"event\":\"lagged\",\"skipped\":{n}}}")),
                };
                return Some((Ok(frame), (rx, Some(secrets))));
            }
        }
    })
    .take_until(st.cancel.clone().cancelled_owned())
}

pub(super) async fn events(State(st): State<AdminState>, Query(q): Query<EventsQuery>) -> Response {
    let logs = matches!(q.logs.as_deref(), Some("1" | "true" | "yes"));
    Sse::new(event_stream(&st, logs))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

pub(super) async fn state(State(st): State<AdminState>) -> Response {
    let (seq, records) = st.engine.records_at();
    let body = serde_json::json!({
        "seq": seq,
        "snapshot": st.engine.snapshot(),
        "records": records,
        "recent": st.engine.recent_events(),
    });
    Json(body).into_response()
}

pub(super) async fn lab_file(State(st): State<AdminState>) -> Response {
    Json(redacted_answer(&st.engine.lab())).into_response()
}

/// `{path, lab}` with the lab's secrets masked (the values the lab's files hold are
/// masked on the way out, as in every answer: [`super::scrub`]).
pub fn redacted_answer(lab: &Lab) -> serde_json::Value {
    serde_json::json!({
        "path": lab.path,
        "lab": redact(&lab.file),
    })
}

/// lab.yaml as parsed, with the inline token masked and every free-text field that could
/// hold a secret (templates, extra arguments, command lines) masked by pattern.
pub fn redact(file: &LabFile) -> LabFile {
    let mut f = file.clone();
    let m = |s: &mut String| *s = mask_patterns(s);
    let mo = |s: &mut Option<String>| {
        if let Some(s) = s {
            *s = mask_patterns(s);
        }
    };
    if f.k3s.token.is_some() {
        f.k3s.token = Some(MASK.to_string());
    }
    mo(&mut f.k3s.extra_args);
    mo(&mut f.k3s.server_url);
    m(&mut f.boot.cmdline);
    for r in f.roles.values_mut() {
        mo(&mut r.user_data);
        mo(&mut r.meta_data);
        mo(&mut r.cmdline_extra);
    }
    for n in &mut f.nodes {
        mo(&mut n.cmdline_extra);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redacted_lab_holds_no_secret_and_parses_back() {
        let text = "name: t\nboot: {kernel: k, cmdline: 'console=ttyS0 password=hunter22'}\n\
                    k3s: {token: inline-k3s-secret-0123, extra_args: '--token other-secret-9'}\n\
                    roles:\n  web:\n    description: joins with a0b1c2d3e4\n    user_data: |\n      #cloud-config\n      password: plain-pw-77\n\
                    nodes:\n  - {mac: 52:54:00:00:00:01, hostname: a, role: web}\n";
        let lab = Lab::parse(std::path::Path::new("/srv/lab/lab.yaml"), text).unwrap();
        let v = redacted_answer(&lab);
        let s = v.to_string();
        for secret in [
            "inline-k3s-secret",
            "hunter22",
            "other-secret-9",
            "plain-pw-77",
        ] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        let back: LabFile = serde_json::from_value(v["lab"].clone()).unwrap();
        assert_eq!(back.nodes, lab.file.nodes);
        assert_eq!(back.name, "t");
        assert!(back.roles.contains_key("web"));
        // A token's value (e.g. from its file) is caught wherever it is on the way out.
        assert!(s.contains("a0b1c2d3e4"), "{s}");
        let out = Secrets::from_values(vec!["a0b1c2d3e4".into()]).scrub(&s);
        assert!(!out.contains("a0b1c2d3e4"), "{out}");
    }
}
