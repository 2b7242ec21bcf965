//! Where a release's netboot files are on a mirror, and which point release is the
//! latest: Alpine lists every file of a release folder, with size and SHA-256, in
//! `latest-releases.yaml`, so the operator names a branch (`v3.21`) and never a
//! version number that goes stale.

use serde::Deserialize;

use super::FetchError;

/// One netboot tarball on a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netboot {
    /// The release folder's URL (`{mirror}/{release}/releases/{arch}`).
    pub folder: String,
    /// The tarball's file name, e.g. `alpine-netboot-3.21.4-x86_64.tar.gz`.
    pub file: String,
    /// The point release, e.g. `3.21.4`.
    pub version: String,
    /// Size in bytes, when the index says.
    pub size: Option<u64>,
    /// SHA-256 (lowercase hex), when the index says.
    pub sha256: Option<String>,
}

impl Netboot {
    /// The tarball's URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.folder, self.file)
    }
}

/// One entry of `latest-releases.yaml` (other fields are ignored).
#[derive(Debug, Deserialize)]
struct Entry {
    flavor: Option<String>,
    file: Option<String>,
    version: Option<String>,
    size: Option<u64>,
    sha256: Option<String>,
}

/// The release folder for `release` and `arch` on `mirror`.
pub fn folder(mirror: &str, release: &str, arch: &str) -> String {
    format!("{}/{release}/releases/{arch}", mirror.trim_end_matches('/'))
}

/// The index's URL for a release folder.
pub fn index_url(folder: &str) -> String {
    format!("{folder}/latest-releases.yaml")
}

/// Finds the netboot tarball in the text of `latest-releases.yaml`.
pub fn parse_index(folder: &str, text: &str) -> Result<Netboot, FetchError> {
    let url = index_url(folder);
    let entries: Vec<Entry> = yaml_serde::from_str(text).map_err(|e| FetchError::Index {
        url: url.clone(),
        message: format!("not a release list: {e}"),
    })?;
    let e = entries
        .into_iter()
        .find(|e| e.flavor.as_deref() == Some("alpine-netboot"))
        .ok_or_else(|| FetchError::Index {
            url: url.clone(),
            message: "no alpine-netboot entry".to_string(),
        })?;
    let (Some(file), Some(version)) = (e.file, e.version) else {
        return Err(FetchError::Index {
            url,
            message: "the alpine-netboot entry lacks file or version".to_string(),
        });
    };
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if !plain(&file) {
        return Err(FetchError::Index {
            url,
            message: format!("file name `{file}` is not a plain name"),
        });
    }
    Ok(Netboot {
        folder: folder.to_string(),
        file,
        version,
        size: e.size,
        sha256: e.sha256.map(|s| s.to_ascii_lowercase()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "---\n-\n  title: \"Mini root filesystem\"\n  flavor: alpine-minirootfs\n  version: 3.21.4\n  file: alpine-minirootfs-3.21.4-x86_64.tar.gz\n  size: 3500000\n  sha256: aa\n-\n  title: \"Netboot\"\n  branch: v3.21\n  arch: x86_64\n  version: 3.21.4\n  flavor: alpine-netboot\n  file: alpine-netboot-3.21.4-x86_64.tar.gz\n  size: 12345\n  sha256: ABCDEF\n";

    #[test]
    fn picks_the_netboot_entry() {
        let f = folder("http://m/alpine/", "v3.21", "x86_64");
        assert_eq!(f, "http://m/alpine/v3.21/releases/x86_64");
        let n = parse_index(&f, INDEX).unwrap();
        assert_eq!(n.file, "alpine-netboot-3.21.4-x86_64.tar.gz");
        assert_eq!(n.version, "3.21.4");
        assert_eq!(n.size, Some(12345));
        assert_eq!(n.sha256.as_deref(), Some("abcdef"));
        assert_eq!(
            n.url(),
            "http://m/alpine/v3.21/releases/x86_64/alpine-netboot-3.21.4-x86_64.tar.gz"
        );
    }

    #[test]
    fn refuses_an_index_without_netboot_or_with_a_path() {
        let no = INDEX.replace("alpine-netboot", "alpine-virt");
        assert!(matches!(
            parse_index("f", &no),
            Err(FetchError::Index { .. })
        ));
        let evil = INDEX.replace(
            "file: alpine-netboot-3.21.4-x86_64.tar.gz",
            "file: ../../etc/passwd",
        );
        let err = parse_index("f", &evil).unwrap_err().to_string();
        assert!(err.contains("not a plain name"), "{err}");
    }
}
