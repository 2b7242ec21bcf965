//! `pxelab fetch alpine v3.21 x86_64 lts` against a fake mirror on loopback, with a
//! tarball built and signed at test time by a key generated at test time: a good
//! release unpacks and lab.yaml points at it (comments kept); a flipped byte, a wrong
//! signature, a signature by another key, a truncated download and a 404 are each
//! refused with their reason and `assets_dir` left as it was. Plus: the shipped key is
//! Alpine's, and `pxelab check` warns when a fetched asset changes.

mod fetch_support;

use std::path::Path;
use std::process::{Command, Output};

use fetch_support::*;
use pxelab::fetch::FetchError;

fn pxelab(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pxelab"));
    c.current_dir(dir)
        .env_remove("PXELAB_CONFIG")
        .env_remove("PXELAB_MIRROR")
        .env_remove("PXELAB_FETCH_KEYRING")
        .args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a fetch that must be refused; returns the error after checking `assets/` and
/// lab.yaml are as they were and nothing but the staging folder appeared beside them.
fn refused(m: &Mirror, key: &TestKey) -> FetchError {
    let (dir, lab) = lab_dir();
    let ring = keyring_file(dir.path(), key);
    let before = listing(&dir.path().join("assets"));
    let err = pxelab::fetch::run(&lab, &args(m, &ring)).unwrap_err();
    assert_eq!(listing(&dir.path().join("assets")), before, "{err}");
    assert_eq!(std::fs::read_to_string(&lab).unwrap(), LAB, "{err}");
    assert!(!dir.path().join(".pxelab/fetched.json").exists(), "{err}");
    // Nothing half-written beside it either (only a cut download is kept, for resume).
    assert!(!dir.path().join(".assets.fetch").exists(), "{err}");
    err
}

#[test]
fn good_release_unpacks_verifies_and_points_lab_yaml_at_it() {
    let m = Mirror::start();
    let key = TestKey::new("release");
    let members = members();
    let tar = tarball(&members);
    publish(&m, &tar, &tar, key.sign(&tar));
    let (dir, _lab) = lab_dir();
    let ring = keyring_file(dir.path(), &key);
    let o = pxelab(
        dir.path(),
        &["fetch", "alpine", RELEASE, ARCH, "lts"],
        &[
            ("PXELAB_MIRROR", &m.url()),
            ("PXELAB_FETCH_KEYRING", ring.to_str().unwrap()),
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains(&netboot_file()), "{out}");

    // The lts files, byte for byte; the old file stays; nothing else (no virt, no config).
    let assets = dir.path().join("assets");
    let mut want = std::collections::BTreeMap::new();
    want.insert("vmlinuz-old".to_string(), sha256_hex(b"old kernel"));
    for (name, data) in &members {
        let base = name.trim_start_matches("boot/");
        if ["vmlinuz-lts", "initramfs-lts", "modloop-lts"].contains(&base) {
            want.insert(base.to_string(), sha256_hex(data));
        }
    }
    assert_eq!(listing(&assets), want);
    // The staging folder is gone.
    assert!(!dir.path().join(".assets.fetch").exists());

    // lab.yaml: boot points at them, comments and the rest kept.
    let yaml = std::fs::read_to_string(dir.path().join("lab.yaml")).unwrap();
    let expected = LAB
        .replace("kernel: vmlinuz-old", "kernel: vmlinuz-lts")
        .replace("initrds: [initramfs-old]", "initrds: [initramfs-lts]")
        .replace(
            "  cmdline: console=ttyS0\n",
            "  cmdline: console=ttyS0\n  modloop: modloop-lts\n",
        );
    assert_eq!(yaml, expected);

    // fetched.json records each unpacked file.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".pxelab/fetched.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["version"], VERSION);
    assert_eq!(manifest["source_sha256"], sha256_hex(&tar));
    let recorded = manifest["assets"].as_array().unwrap();
    assert_eq!(recorded.len(), 3, "{manifest}");
    for a in recorded {
        let name = a["name"].as_str().unwrap();
        let data = std::fs::read(assets.join(name)).unwrap();
        assert_eq!(a["size"].as_u64(), Some(data.len() as u64), "{name}");
        assert_eq!(
            a["sha256"].as_str(),
            Some(sha256_hex(&data).as_str()),
            "{name}"
        );
    }
}

#[test]
fn flipped_byte_is_refused_naming_expected_and_got() {
    let m = Mirror::start();
    let key = TestKey::new("release");
    let tar = tarball(&members());
    let mut bad = tar.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    publish(&m, &bad, &tar, key.sign(&tar));
    let err = refused(&m, &key);
    let msg = err.to_string();
    match err {
        FetchError::Checksum { expected, got, .. } => {
            assert_eq!(expected, sha256_hex(&tar), "{msg}");
            assert_eq!(got, sha256_hex(&bad), "{msg}");
        }
        other => panic!("not a checksum refusal: {other}"),
    }
    assert!(msg.contains("bad checksum"), "{msg}");
}

#[test]
fn wrong_signature_is_refused() {
    let m = Mirror::start();
    let key = TestKey::new("release");
    let tar = tarball(&members());
    publish(&m, &tar, &tar, key.sign(b"another file entirely"));
    let err = refused(&m, &key);
    let msg = err.to_string();
    assert!(
        matches!(&err, FetchError::BadSignature { key_id, .. } if *key_id == key.key_id()),
        "{msg}"
    );
    assert!(msg.contains("bad signature"), "{msg}");
}

#[test]
fn signature_by_another_key_is_refused_naming_that_key() {
    let m = Mirror::start();
    let key = TestKey::new("release");
    let other = TestKey::new("intruder");
    let tar = tarball(&members());
    publish(&m, &tar, &tar, other.sign(&tar));
    let err = refused(&m, &key);
    let msg = err.to_string();
    assert!(matches!(err, FetchError::WrongKey { .. }), "{msg}");
    assert!(msg.contains(&other.key_id()), "{msg}");
    assert!(!msg.contains(&key.key_id()), "{msg}");
}

#[test]
fn truncated_download_is_refused_then_resumed() {
    let m = Mirror::start();
    let key = TestKey::new("release");
    let members = members();
    let tar = tarball(&members);
    publish(&m, &tar, &tar, key.sign(&tar));
    let cut = tar.len() / 3;
    m.cut_once(&netboot_path(), cut);

    let (dir, lab) = lab_dir();
    let ring = keyring_file(dir.path(), &key);
    let before = listing(&dir.path().join("assets"));
    let err = pxelab::fetch::run(&lab, &args(&m, &ring)).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, FetchError::Truncated { got, expected, .. }
            if got == cut as u64 && expected == tar.len() as u64),
        "{msg}"
    );
    assert_eq!(listing(&dir.path().join("assets")), before);
    assert_eq!(std::fs::read_to_string(&lab).unwrap(), LAB);
    let part = dir
        .path()
        .join(format!(".assets.fetch/{}.part", netboot_file()));
    assert_eq!(std::fs::read(&part).unwrap(), tar[..cut]);

    // The second run asks only for the rest, and completes.
    pxelab::fetch::run(&lab, &args(&m, &ring)).unwrap();
    assert_eq!(
        m.ranges(&netboot_path()),
        vec![None, Some(format!("bytes={cut}-"))]
    );
    let kernel = &members
        .iter()
        .find(|(n, _)| n == "boot/vmlinuz-lts")
        .unwrap()
        .1;
    assert_eq!(
        std::fs::read(dir.path().join("assets/vmlinuz-lts")).unwrap(),
        *kernel
    );
}

#[test]
fn missing_release_is_an_http_404_naming_the_url() {
    let m = Mirror::start();
    let key = TestKey::new("release");
    let err = refused(&m, &key);
    let index = format!("{}/{RELEASE}/releases/{ARCH}/latest-releases.yaml", m.url());
    assert!(
        matches!(&err, FetchError::Http { url, status: 404 } if *url == index),
        "{err}"
    );

    // The same refusal from the command line: exit 1, URL and status on stderr.
    let (dir, _) = lab_dir();
    let o = pxelab(
        dir.path(),
        &[
            "fetch",
            "alpine",
            RELEASE,
            ARCH,
            "lts",
            "--mirror",
            &m.url(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("{index}: HTTP 404")),
        "{}",
        text(&o)
    );
}

#[test]
fn shipped_key_is_alpines_release_key() {
    use pgp::composed::{Deserializable, SignedPublicKey};
    use pgp::types::KeyDetails;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/alpine/ncopa.asc");
    let text = std::fs::read_to_string(&path).unwrap();
    let (key, _) = SignedPublicKey::from_armor_single(text.as_bytes()).unwrap();
    key.verify_bindings().unwrap();
    let fp = format!("{:X}", key.primary_key.fingerprint());
    assert_eq!(fp, "0482D84022F52DF1C4E7CD43293ACD0907D9495A");
    // The README names it, in the grouping Alpine's download page uses.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let grouped: Vec<String> = fp
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(readme.contains(&grouped.join(" ")), "README lacks {fp}");
}

#[test]
fn check_warns_when_a_fetched_asset_changes() {
    let m = Mirror::start();
    let key = TestKey::new("release");
    let tar = tarball(&members());
    publish(&m, &tar, &tar, key.sign(&tar));
    let (dir, lab) = lab_dir();
    let ring = keyring_file(dir.path(), &key);
    pxelab::fetch::run(&lab, &args(&m, &ring)).unwrap();

    let drift = |o: &Output| {
        text(o)
            .lines()
            .filter(|l| l.contains("differs from what `pxelab fetch` verified"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let warnings = |o: &Output| text(o).lines().filter(|l| l.contains("warning: ")).count();
    let o = pxelab(dir.path(), &["check"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(drift(&o).is_empty(), "{}", text(&o));
    let before = warnings(&o);

    // Same size, other bytes: only the SHA-256 can tell.
    let initrd = dir.path().join("assets/initramfs-lts");
    let mut data = std::fs::read(&initrd).unwrap();
    data[0] ^= 0xff;
    std::fs::write(&initrd, &data).unwrap();
    let o = pxelab(dir.path(), &["check"], &[]);
    let lines = drift(&o);
    assert_eq!(lines.len(), 1, "{}", text(&o));
    assert!(lines[0].contains("initramfs-lts"), "{}", lines[0]);
    assert!(lines[0].contains(&sha256_hex(&data)), "{}", lines[0]);
    assert_eq!(warnings(&o), before + 1, "{}", text(&o));
}

#[test]
fn aarch64_unpacks_dtbs_and_a_new_fetch_replaces_them_whole() {
    let m = Mirror::start();
    let key = TestKey::new("release");
    let all = members();
    let tar = tarball(&all);
    publish_for(&m, "aarch64", &tar, &tar, key.sign(&tar));
    let (dir, lab) = lab_dir();
    let ring = keyring_file(dir.path(), &key);
    let fetched = pxelab::fetch::run(&lab, &args_for(&m, &ring, "aarch64")).unwrap();
    let assets = dir.path().join("assets");
    let listed = listing(&assets);
    for (name, data) in all.iter().filter(|(n, _)| n.contains("/dtbs-lts/")) {
        let rel = name.trim_start_matches("boot/");
        assert_eq!(
            listed.get(rel),
            Some(&sha256_hex(data)),
            "{rel}: {listed:?}"
        );
    }
    // Three boot files and two device trees, each recorded.
    assert_eq!(fetched.manifest.assets.len(), 5, "{:?}", fetched.manifest);
    assert!(fetched
        .manifest
        .assets
        .iter()
        .any(|a| a.name == "dtbs-lts/broadcom/bcm2711-rpi-4-b.dtb"));

    // A later release without one of the device trees: the folder is replaced whole.
    let fewer: Vec<_> = all
        .into_iter()
        .filter(|(n, _)| !n.contains("broadcom"))
        .collect();
    let tar2 = tarball(&fewer);
    publish_for(&m, "aarch64", &tar2, &tar2, key.sign(&tar2));
    pxelab::fetch::run(&lab, &args_for(&m, &ring, "aarch64")).unwrap();
    assert!(!assets.join("dtbs-lts/broadcom").exists());
    assert!(assets
        .join("dtbs-lts/rockchip/rk3399-rockpro64.dtb")
        .is_file());
}
