use super::*;

fn lab_in(dir: &Path, extra: &str) -> Lab {
    let text = format!(
        "name: t\nboot:\n  kernel: vmlinuz\nnodes:\n  - mac: 52:54:00:00:00:01\n    hostname: a\n    role: k3s-server\n{extra}"
    );
    Lab::parse(&dir.join("lab.yaml"), &text).unwrap()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const M1: &str = "52:54:00:00:00:01";
const M2: &str = "52:54:00:00:00:02";

#[test]
fn files_are_made_once_with_mode_0600() {
    let d = tempfile::tempdir().unwrap();
    let lab = lab_in(d.path(), "");
    let s = for_node(&lab, M1.parse().unwrap()).unwrap();
    let st = lab.state_dir();
    for f in [LAB_SECRET_FILE, OPERATOR_KEY_FILE, TOKEN_FILE] {
        assert_eq!(mode(&st.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&st), 0o700);
    let pubtext = std::fs::read_to_string(st.join("operator_ed25519.pub")).unwrap();
    assert_eq!(pubtext.trim(), s.operator_public_key.clone().unwrap());
    let token = std::fs::read_to_string(st.join(TOKEN_FILE)).unwrap();
    assert!(token.trim().len() >= 32);
    // Nodes get the secure form, hashing the cluster CA made beside it.
    let ca = std::fs::read(st.join("k3s-ca/server-ca.crt")).unwrap();
    let hash = ca_hash::ca_hash(&ca).unwrap();
    assert_eq!(s.k3s_token, format!("K10{hash}::server:{}", token.trim()));
    assert_eq!(mode(&st.join("k3s-ca/server-ca.key")), 0o600);

    // A new run (cache dropped) reads the same files and derives the same keys.
    lock(cache()).remove(&st);
    let again = for_node(&lab, M1.parse().unwrap()).unwrap();
    assert_eq!(again.operator_public_key, s.operator_public_key);
    assert_eq!(again.host_private_key, s.host_private_key);
    assert_eq!(again.host_public_key, s.host_public_key);
    assert_eq!(again.node_password, s.node_password);
    assert_eq!(again.k3s_token, s.k3s_token);
}

#[test]
fn nodes_get_distinct_matching_keys() {
    let d = tempfile::tempdir().unwrap();
    let lab = lab_in(d.path(), "");
    let a = for_node(&lab, M1.parse().unwrap()).unwrap();
    let b = for_node(&lab, M2.parse().unwrap()).unwrap();
    assert_ne!(a.host_private_key, b.host_private_key);
    assert_ne!(a.host_public_key, b.host_public_key);
    assert_ne!(a.node_password, b.node_password);
    assert_eq!(a.operator_public_key, b.operator_public_key);
    assert_eq!(a.k3s_token, b.k3s_token);
    // The private key is a real OpenSSH ed25519 key whose public half is the pinned key.
    let k = PrivateKey::from_openssh(a.host_private_key.as_ref().unwrap()).unwrap();
    assert_eq!(k.algorithm(), russh::keys::Algorithm::Ed25519);
    let (pk, fp) = host_public_key(&lab, M1.parse().unwrap()).unwrap();
    assert_eq!(k.public_key().key_data(), pk.key_data());
    assert!(fp.starts_with("SHA256:"));
    assert_eq!(Some(fp), a.host_key_fingerprint);
    assert!(a
        .host_public_key
        .as_ref()
        .unwrap()
        .starts_with("ssh-ed25519 "));
    assert!(a
        .host_private_key
        .as_ref()
        .unwrap()
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
}

#[test]
fn another_lab_folder_gets_other_keys() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let a = for_node(&lab_in(d1.path(), ""), M1.parse().unwrap()).unwrap();
    let b = for_node(&lab_in(d2.path(), ""), M1.parse().unwrap()).unwrap();
    assert_ne!(a.host_public_key, b.host_public_key);
    assert_ne!(a.node_password, b.node_password);
    assert_ne!(a.operator_public_key, b.operator_public_key);
}

#[test]
fn token_sources_in_order() {
    let d = tempfile::tempdir().unwrap();
    let inline = lab_in(d.path(), "k3s:\n  token: sekrit-inline\n");
    assert_eq!(k3s_token(&inline).unwrap(), "sekrit-inline");
    std::fs::write(d.path().join("tok"), "from-file\n").unwrap();
    let file = lab_in(d.path(), "k3s:\n  token_file: tok\n");
    assert_eq!(k3s_token(&file).unwrap(), "from-file");
    let missing = lab_in(d.path(), "k3s:\n  token_file: made/tok2\n");
    let t = k3s_token(&missing).unwrap();
    assert_eq!(mode(&d.path().join("made/tok2")), 0o600);
    assert_eq!(
        std::fs::read_to_string(d.path().join("made/tok2"))
            .unwrap()
            .trim(),
        t
    );
}

#[test]
fn a_bad_secret_file_is_an_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let lab = lab_in(d.path(), "");
    std::fs::create_dir_all(lab.state_dir()).unwrap();
    std::fs::write(lab.state_dir().join(LAB_SECRET_FILE), "nothex").unwrap();
    let e = for_node(&lab, M1.parse().unwrap()).unwrap_err().to_string();
    assert!(e.contains(LAB_SECRET_FILE), "{e}");
    assert!(!e.contains("nothex"), "{e}");
}

#[test]
fn debug_never_shows_secrets() {
    let d = tempfile::tempdir().unwrap();
    let s = for_node(&lab_in(d.path(), ""), M1.parse().unwrap()).unwrap();
    let dbg = format!("{s:?}");
    assert!(!dbg.contains(&s.k3s_token));
    assert!(!dbg.contains(s.node_password.as_ref().unwrap()));
    assert!(!dbg.contains("PRIVATE"));
}

#[test]
fn concurrent_first_writers_agree_and_none_fails() {
    // A boot storm's first user-data renders create the secret files at once.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k3s-token");
    let results: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let path = path.clone();
                s.spawn(move || write_once(&path, format!("writer {i}\n").as_bytes()).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let on_disk = std::fs::read(&path).unwrap();
    assert!(results.iter().all(|r| *r == on_disk));
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "temp files left behind");
}

#[test]
fn only_the_k3s_server_gets_the_cluster_ca() {
    let d = tempfile::tempdir().unwrap();
    let lab = lab_in(
        d.path(),
        "  - mac: 52:54:00:00:00:02\n    hostname: b\n    role: k3s-agent\n",
    );
    let server = for_node(&lab, M1.parse().unwrap()).unwrap();
    let agent = for_node(&lab, M2.parse().unwrap()).unwrap();
    let ca = server.k3s_ca.expect("the server gets the CA");
    assert!(agent.k3s_ca.is_none(), "an agent never gets the CA keys");
    assert_eq!(server.k3s_token, agent.k3s_token);
    assert!(ca
        .files
        .iter()
        .any(|f| f.path.ends_with("/server/tls/etcd/peer-ca.key") && f.permissions == "0600"));
    // A secure token of the operator's own: used as given, and pxelab delivers no CA.
    let d2 = tempfile::tempdir().unwrap();
    let own = lab_in(d2.path(), "k3s:\n  token: K10abc::server:mine\n");
    let s = for_node(&own, M1.parse().unwrap()).unwrap();
    assert_eq!(s.k3s_token, "K10abc::server:mine");
    assert!(s.k3s_ca.is_none());
}
