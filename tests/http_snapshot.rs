//! `/snapshot/<mac>`: the k3s server's newest datastore snapshot goes to the server
//! itself only, by the user-data rule (loopback, curl).

mod common;
mod http_lab;

use http_lab::{curl, Server, TempLab, NODE1, NODE2};
use pxelab::Mac;

#[test]
fn the_newest_snapshot_goes_to_the_booted_server_only() {
    if !common::require_program("curl") {
        return;
    }
    let s = Server::start(TempLab::new(), false);
    let server: Mac = NODE1.parse().unwrap();
    let url = format!("{}/snapshot/{NODE1}", s.lab.base());
    // Before the server booted: refused, like its user-data.
    assert_eq!(curl(&url, &[]).status, 403);
    // An agent has no snapshots, whoever asks.
    assert_eq!(
        curl(&format!("{}/snapshot/{NODE2}", s.lab.base()), &[]).status,
        404
    );
    assert_eq!(
        curl(&format!("{}/boot.ipxe?mac={NODE1}", s.lab.base()), &[]).status,
        200
    );
    // Booted, none taken yet: a plain 404, not a refusal.
    assert_eq!(curl(&url, &[]).status, 404);
    // Two snapshots: the newest is served, byte for byte.
    let state = s.lab.dir.path().join(".pxelab");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for body in [&[0x1f, 0x8b, 1][..], &[0x1f, 0x8b, 2, 2][..]] {
        rt.block_on(async {
            let mut p = pxelab::secrets::snapshots::begin(&state, server, "scheduled")
                .await
                .unwrap();
            p.write(body).await.unwrap();
            p.commit(server, 5).await.unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let g = curl(&url, &[]);
    assert_eq!((g.status, g.body.clone()), (200, vec![0x1f, 0x8b, 2, 2]));
    // From another address than the one the server booted from: refused.
    let g = curl(&url, &["--interface", "127.0.0.2"]);
    assert_eq!(g.status, 403);
    assert!(g.body.len() < 40, "no snapshot in a refusal");
}
