//! Helpers for the `pxelab fetch` tests: a signing key made at test time, a netboot
//! tarball built at test time, a release published on the fake [`mirror`], and a lab
//! folder whose `assets_dir` can be compared before and after.

#![allow(dead_code)]

pub mod mirror;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgp::composed::{
    ArmorOptions, DetachedSignature, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};
use sha2::{Digest, Sha256};

pub use mirror::Mirror;

pub const RELEASE: &str = "v3.21";
pub const ARCH: &str = "x86_64";
pub const VERSION: &str = "3.21.9";

/// A signing key generated for one test run.
pub struct TestKey {
    secret: SignedSecretKey,
}

impl TestKey {
    pub fn new(name: &str) -> TestKey {
        let params = SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(format!("{name} <{name}@test.invalid>"))
            .build()
            .unwrap();
        TestKey {
            secret: params.generate(rand08::thread_rng()).unwrap(),
        }
    }

    /// The public key, armored (a keyring file's content).
    pub fn public_armored(&self) -> String {
        SignedPublicKey::from(self.secret.clone())
            .to_armored_string(ArmorOptions::default())
            .unwrap()
    }

    /// The key id (16 lowercase hex digits), as refusals name it.
    pub fn key_id(&self) -> String {
        self.secret.legacy_key_id().to_string()
    }

    /// An armored detached signature over `data`.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        DetachedSignature::sign_binary_data(
            rand08::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .unwrap()
        .to_armored_bytes(ArmorOptions::default())
        .unwrap()
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Pseudo-random bytes (a fixed-seed LCG: contents differ per name, no RNG needed).
pub fn filler(seed: u8, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// The members of a netboot tarball: `boot/` files of the lts and virt flavours.
pub fn members() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for (i, name) in [
        "vmlinuz-lts",
        "initramfs-lts",
        "modloop-lts",
        "config-lts",
        "vmlinuz-virt",
        "initramfs-virt",
        "modloop-virt",
    ]
    .iter()
    .enumerate()
    {
        v.push((format!("boot/{name}"), filler(i as u8, 20_000 + i * 3_000)));
    }
    // Device trees, as aarch64 tarballs carry them (unpacked only for aarch64).
    for (i, name) in [
        "rockchip/rk3399-rockpro64.dtb",
        "broadcom/bcm2711-rpi-4-b.dtb",
    ]
    .iter()
    .enumerate()
    {
        v.push((
            format!("boot/dtbs-lts/{name}"),
            filler(100 + i as u8, 3_000),
        ));
    }
    v
}

/// A gzipped tarball of `members`.
pub fn tarball(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// The tarball's file name and its path below the mirror.
pub fn netboot_file() -> String {
    netboot_file_for(ARCH)
}

pub fn netboot_file_for(arch: &str) -> String {
    format!("alpine-netboot-{VERSION}-{arch}.tar.gz")
}

pub fn netboot_path() -> String {
    format!("{RELEASE}/releases/{ARCH}/{}", netboot_file())
}

/// Publishes `tar` on `m` as the release's netboot tarball: `latest-releases.yaml`
/// (listing `listed`'s size and sum), `.sha256` of `listed`, `.asc` = `sig`.
pub fn publish(m: &Mirror, tar: &[u8], listed: &[u8], sig: Vec<u8>) {
    publish_for(m, ARCH, tar, listed, sig)
}

/// [`publish`] for another architecture.
pub fn publish_for(m: &Mirror, arch: &str, tar: &[u8], listed: &[u8], sig: Vec<u8>) {
    let file = netboot_file_for(arch);
    let sum = sha256_hex(listed);
    let index = format!(
        "---\n-\n  title: \"Mini root filesystem\"\n  flavor: alpine-minirootfs\n  version: {VERSION}\n  file: alpine-minirootfs-{VERSION}-{arch}.tar.gz\n  size: 10\n  sha256: {}\n-\n  title: \"Netboot\"\n  branch: {RELEASE}\n  arch: {arch}\n  version: {VERSION}\n  flavor: alpine-netboot\n  file: {file}\n  size: {}\n  sha256: {sum}\n",
        "0".repeat(64),
        listed.len()
    );
    let dir = format!("{RELEASE}/releases/{arch}");
    m.put(&format!("{dir}/latest-releases.yaml"), index.into_bytes());
    m.put(&format!("{dir}/{file}"), tar.to_vec());
    m.put(
        &format!("{dir}/{file}.sha256"),
        format!("{sum}  {file}\n").into_bytes(),
    );
    m.put(&format!("{dir}/{file}.asc"), sig);
}

/// lab.yaml for the tests: comments that must survive the edit, old asset names.
pub const LAB: &str = "\
# the test lab: keep this comment
name: fetch-test
server_address: 127.0.0.1
dhcp: {mode: off}
tftp: {enabled: false}
http: {port: 18080, admin_port: 18081}
ssh: {watch: false}

# what every node boots (keep this comment too)
boot:
  assets_dir: assets   # served under /assets/
  kernel: vmlinuz-old
  initrds: [initramfs-old]
  cmdline: console=ttyS0
unknown: hold
";

/// A lab folder with `LAB` and an `assets/` holding one old file.
pub fn lab_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.yaml");
    std::fs::write(&lab, LAB).unwrap();
    let assets = dir.path().join("assets");
    std::fs::create_dir(&assets).unwrap();
    std::fs::write(assets.join("vmlinuz-old"), b"old kernel").unwrap();
    (dir, lab)
}

/// Every file below `dir` (relative path → SHA-256).
pub fn listing(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(rel, sha256_hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A keyring file holding `key`'s public key.
pub fn keyring_file(dir: &Path, key: &TestKey) -> PathBuf {
    let p = dir.join("test-keyring.asc");
    std::fs::write(&p, key.public_armored()).unwrap();
    p
}

/// `pxelab fetch alpine v3.21 x86_64 lts` arguments against `m` with `keyring`.
pub fn args(m: &Mirror, keyring: &Path) -> pxelab::fetch::FetchArgs {
    args_for(m, keyring, ARCH)
}

/// [`args`] for another architecture.
pub fn args_for(m: &Mirror, keyring: &Path, arch: &str) -> pxelab::fetch::FetchArgs {
    pxelab::fetch::FetchArgs {
        distro: pxelab::fetch::Distro::Alpine,
        release: RELEASE.to_string(),
        arch: arch.to_string(),
        flavour: "lts".to_string(),
        mirror: m.url(),
        keyring: Some(keyring.to_path_buf()),
    }
}
