//! The one HTTP client against a real axum server on loopback: status, body, the bearer
//! header, JSON bodies, what is kept of a long body, and both timeouts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use pxelab::http::client::{self, Call, ClientError};

async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "{\"fine\":true}" }))
        .route(
            "/whoami",
            get(|h: HeaderMap| async move {
                match h.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some(v) => (StatusCode::OK, format!("auth={v}")),
                    None => (StatusCode::UNAUTHORIZED, "{\"error\":\"no token\"}".into()),
                }
            }),
        )
        .route(
            "/echo",
            post(|h: HeaderMap, body: String| async move {
                let ct = h
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                (StatusCode::CREATED, format!("{ct} {body}"))
            }),
        )
        .route("/big", get(|| async { "x".repeat(100_000) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn status_body_and_bearer() {
    let addr = server().await;
    let r = client::request(addr.port(), "GET", "/ok", None, None)
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "{\"fine\":true}"));
    assert!(r.ok());

    let r = client::request(addr.port(), "GET", "/whoami", None, Some("s3cret"))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "auth=Bearer s3cret"));
    let r = client::request(addr.port(), "GET", "/whoami", None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(!r.ok());
    assert_eq!(r.error_message(), "no token");

    let r = client::request(addr.port(), "POST", "/echo", Some("{\"a\":1}"), None)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (201, "application/json {\"a\":1}")
    );
    let r = client::request(addr.port(), "GET", "/nope", None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn long_bodies_are_counted_kept_or_refused() {
    let addr = server().await;
    let counted = client::fetch(&Call {
        keep: 10,
        max_body: None,
        ..Call::new(addr, "GET", "/big")
    })
    .await
    .unwrap();
    assert_eq!((counted.bytes, counted.body.len()), (100_000, 10));
    let refused = client::fetch(&Call {
        max_body: Some(1000),
        ..Call::new(addr, "GET", "/big")
    })
    .await;
    assert!(
        matches!(&refused, Err(ClientError::BadReply { message, .. }) if message.contains("too large")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_slow_server_times_out_and_a_closed_port_is_not_running() {
    let addr = server().await;
    let t = Instant::now();
    let r = client::fetch(&Call {
        timeout: Duration::from_millis(300),
        ..Call::new(addr, "GET", "/slow")
    })
    .await;
    assert!(matches!(r, Err(ClientError::Timeout { .. })), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // A port nothing listens on: bind one, note it, close it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = client::request(port, "GET", "/ok", None, Some("s3cret")).await;
    match r {
        Err(e @ ClientError::NotRunning { .. }) => {
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_token_that_is_not_a_header_value_is_refused_without_showing_it() {
    let addr = server().await;
    let r = client::request(addr.port(), "GET", "/whoami", None, Some("bad\ntoken")).await;
    match r {
        Err(e @ ClientError::BadRequest { .. }) => {
            assert!(!e.to_string().contains("bad\ntoken"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let debug = format!(
        "{:?}",
        Call {
            bearer: Some("s3cret"),
            ..Call::new(addr, "GET", "/")
        }
    );
    assert!(!debug.contains("s3cret"), "{debug}");
}
