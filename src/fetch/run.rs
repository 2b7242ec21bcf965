//! The fetch itself, in the order that keeps `assets_dir` untouched until every check
//! passed: index → checksum and signature files → tarball (resumable) → SHA-256 →
//! signature → unpack into staging → rename into place → manifest → lab.yaml.

use std::path::{Path, PathBuf};

use crate::config::Lab;

use super::download::Client;
use super::keyring::Keyring;
use super::manifest::{Asset, Manifest};
use super::{io_err, manifest, mirror, unpack, verify, FetchArgs, FetchError};

/// What a successful fetch did.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The record written to `.pxelab/fetched.json`.
    pub manifest: Manifest,
    /// `assets_dir`, resolved.
    pub assets_dir: PathBuf,
    /// lab.yaml.
    pub lab: PathBuf,
}

impl std::fmt::Display for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        writeln!(f, "fetched {} (Alpine {})", m.source, m.version)?;
        writeln!(f, "  sha256 {} ok", m.source_sha256)?;
        writeln!(f, "  signed by {} ok", m.signed_by)?;
        for a in &m.assets {
            writeln!(
                f,
                "  {}/{}  {} bytes",
                self.assets_dir.display(),
                a.name,
                a.size
            )?;
        }
        write!(f, "{} points boot: at them", self.lab.display())
    }
}

/// Runs `pxelab fetch` for the lab in `config`.
pub fn run(config: &Path, args: &FetchArgs) -> Result<Fetched, FetchError> {
    let lab = Lab::load(config)?;
    let ring = match &args.keyring {
        Some(p) => Keyring::from_file(p)?,
        None => Keyring::alpine()?,
    };
    let client = Client::new();
    let folder = mirror::folder(&args.mirror, &args.release, &args.arch);
    let index = client.get_small(&mirror::index_url(&folder))?;
    let nb = mirror::parse_index(&folder, &String::from_utf8_lossy(&index))?;
    let url = nb.url();
    let sums_url = format!("{url}.sha256");
    let sums = client.get_small(&sums_url)?;
    let asc = client.get_small(&format!("{url}.asc"))?;
    let published =
        verify::published_sum(&String::from_utf8_lossy(&sums), &nb.file).ok_or_else(|| {
            FetchError::Index {
                url: sums_url,
                message: format!("no SHA-256 for {}", nb.file),
            }
        })?;
    if let Some(listed) = &nb.sha256 {
        if *listed != published {
            return Err(FetchError::Checksum {
                file: format!("{} (latest-releases.yaml vs .sha256)", nb.file),
                expected: listed.clone(),
                got: published,
            });
        }
    }

    let assets_dir = lab.assets_dir();
    let staging = unpack::staging_dir(&assets_dir);
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let staged = (|| -> Result<(String, Vec<Asset>), FetchError> {
        let part = staging.join(format!("{}.part", nb.file));
        client.get_resumable(&url, &part, nb.size)?;
        // A complete but wrong file is dropped: resuming it could never make it right.
        let signed_by = verify::check_sha256(&part, &nb.file, &published)
            .and_then(|()| verify::check_signature(&part, &nb.file, &asc, &ring))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&part);
            })?;

        let want = unpack::wanted(&args.flavour, args.arch == "aarch64");
        let unpacked = staging.join("unpacked");
        let files = unpack::extract(&part, &nb.file, &want, &unpacked).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&unpacked);
        })?;
        let mut assets = Vec::with_capacity(files.len());
        for name in files {
            let p = unpacked.join(&name);
            let size = std::fs::metadata(&p).map_err(io_err(&p))?.len();
            let sha256 = verify::sha256_file(&p)?;
            assets.push(Asset { name, size, sha256 });
        }
        unpack::install(&unpacked, &assets_dir, &want)?;
        std::fs::remove_file(&part).map_err(io_err(&part))?;
        Ok((signed_by, assets))
    })();
    // Gone when empty; a cut download (or a verified tarball that lacked a flavour)
    // stays for the next run.
    let _ = std::fs::remove_dir(&staging);
    let (signed_by, assets) = staged?;

    let m = Manifest {
        source: url,
        source_sha256: published,
        version: nb.version,
        signed_by,
        fetched_at: chrono::Utc::now().to_rfc3339(),
        assets_dir: lab.file.boot.assets_dir.clone(),
        assets,
    };
    manifest::write(&lab.state_dir(), &m)?;
    let kernel = format!("vmlinuz-{}", args.flavour);
    let initrds = vec![format!("initramfs-{}", args.flavour)];
    let modloop = format!("modloop-{}", args.flavour);
    let b = &lab.file.boot;
    if b.kernel != kernel || b.initrds != initrds || b.modloop.as_deref() != Some(&modloop) {
        crate::config::edit::set_boot_assets(&lab, &kernel, &initrds, &modloop)?;
    }
    Ok(Fetched {
        manifest: m,
        assets_dir,
        lab: lab.path.clone(),
    })
}
