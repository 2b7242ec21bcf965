//! The secure token's CA hash against k3s's rule, with the hash computed independently.
//!
//! k3s's rule (pkg/clientaccess/token.go, `hashCA`; docs.k3s.io cli/token, "Secure"):
//! one certificate in the CA bundle → SHA-256 of the file's literal bytes (PEM as on
//! disk); more than one → SHA-256 of the DER of the root that signs the first. No
//! published example with a fixed CA exists to test against (k3s's own token_test.go
//! makes a new CA each run), so the expected values come from outside pxelab:
//! `sha256sum` of the file, and `openssl x509 -outform DER` of the root, then
//! `sha256sum`.

mod common;

use std::path::Path;
use std::process::Command;

use pxelab::secrets::ca_hash::{ca_hash, secure_token};

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn der_sha256(pem: &Path, dir: &Path) -> String {
    let der = dir.join(format!(
        "{}.der",
        pem.file_stem().unwrap().to_string_lossy()
    ));
    let out = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(pem)
        .arg("-out")
        .arg(&der)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    sha256sum(&der)
}

fn ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    (p, rcgen::KeyPair::generate().unwrap())
}

#[test]
fn one_certificate_hashes_the_file_bytes_as_sha256sum_does() {
    if !common::require_program("sha256sum") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // The CA pxelab makes and delivers: its server-ca.crt, as on disk.
    let made = pxelab::secrets::cluster_ca::load_or_create(d.path()).unwrap();
    let file = d.path().join("k3s-ca/server-ca.crt");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes, made.server_ca_pem.as_bytes());
    let want = sha256sum(&file);
    assert_eq!(ca_hash(&bytes).unwrap(), want);
    assert_eq!(
        secure_token(&bytes, "s3cret").unwrap(),
        format!("K10{want}::server:s3cret")
    );
    // Whitespace is significant: the same certificate with one more newline is another
    // hash, again the file's.
    let padded = d.path().join("padded.crt");
    std::fs::write(&padded, [bytes.as_slice(), b"\n"].concat()).unwrap();
    let other = ca_hash(&std::fs::read(&padded).unwrap()).unwrap();
    assert_eq!(other, sha256sum(&padded));
    assert_ne!(other, want);
}

#[test]
fn a_bundle_hashes_the_der_of_the_root_of_its_first_certificate() {
    if !common::require_programs(&["openssl", "sha256sum"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (rp, rk) = ca("test root");
    let root = rp.self_signed(&rk).unwrap();
    let issuer = rcgen::Issuer::new(rp, rk);
    let (ip, ik) = ca("test intermediate");
    let inter = ip.signed_by(&ik, &issuer).unwrap();
    let root_pem = d.path().join("root.pem");
    std::fs::write(&root_pem, root.pem()).unwrap();
    // As k3s's custom-CA script writes server-ca.crt: the intermediate, then the root.
    let bundle = format!("{}{}", inter.pem(), root.pem());
    assert_eq!(
        ca_hash(bundle.as_bytes()).unwrap(),
        der_sha256(&root_pem, d.path())
    );
    // No chain to a root among the others: k3s hashes the literal bytes instead.
    let (lp, lk) = ca("lone");
    let lone = lp.self_signed(&lk).unwrap();
    let unrelated = format!("{}{}", lone.pem(), root.pem());
    let file = d.path().join("unrelated.pem");
    std::fs::write(&file, &unrelated).unwrap();
    assert_eq!(ca_hash(unrelated.as_bytes()).unwrap(), sha256sum(&file));
}
