//! What a node was (or will be) served, for the detail screen, with secrets masked.
//!
//! Masking ([`crate::secrets::mask`]) is belt and braces: every secret value pxelab
//! knows for the node is replaced wherever it appears, and independently anything that
//! looks like a key or a `token:`/`password:` value is hidden.

use std::sync::Arc;

use crate::config::Lab;
use crate::mac::Mac;
pub use crate::secrets::mask::{mask, mask_patterns, MASK};

/// One served file: title and (masked) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// `iPXE script`, `cmdline`, `meta-data`, `user-data`.
    pub title: String,
    /// The text, secrets masked; or why it could not be rendered.
    pub text: String,
}

/// Renders what `mac` gets from the lab right now.
pub fn served(lab: &Lab, mac: Mac) -> Vec<Served> {
    let Some(node) = lab.node_by_mac(&mac) else {
        return vec![Served {
            title: "hold script".into(),
            text: crate::render::hold_script(lab, mac),
        }];
    };
    let secrets = match crate::secrets::for_node(lab, mac) {
        Ok(s) => s,
        Err(e) => {
            return vec![Served {
                title: "error".into(),
                text: format!("secrets unavailable: {e}"),
            }]
        }
    };
    let one = |title: &str, r: Result<String, crate::render::RenderError>| Served {
        title: title.into(),
        text: match r {
            Ok(t) => mask(&t, &secrets),
            Err(e) => format!("cannot render: {e}"),
        },
    };
    vec![
        one("iPXE script", crate::render::ipxe_script(lab, node)),
        one("cmdline", crate::render::kernel_cmdline(lab, node)),
        one("meta-data", crate::render::meta_data(lab, node)),
        one("user-data", crate::render::user_data(lab, node, &secrets)),
    ]
}

/// What `mac` gets from a lab mirrored from a server (`pxelab attach`): the files that
/// need no secret, rendered here as the server renders them, and user-data named as
/// rendered on the server only (no secret is here to render it with).
pub fn served_without_secrets(lab: &Lab, mac: Mac) -> Vec<Served> {
    let Some(node) = lab.node_by_mac(&mac) else {
        return served(lab, mac);
    };
    let one = |title: &str, r: Result<String, crate::render::RenderError>| Served {
        title: title.into(),
        text: match r {
            Ok(t) => mask_patterns(&t),
            Err(e) => format!("cannot render: {e}"),
        },
    };
    vec![
        one("iPXE script", crate::render::ipxe_script(lab, node)),
        one("cmdline", crate::render::kernel_cmdline(lab, node)),
        one("meta-data", crate::render::meta_data(lab, node)),
        Served {
            title: "user-data (on the server)".into(),
            text: super::attached::USER_DATA_ON_SERVER.to_string(),
        },
    ]
}

/// What one node is served, rendered once per (node, lab) and kept.
///
/// Rendering every template and reading the node's secrets from disk is templating and
/// file I/O on the UI task; the detail asks again at every engine change (thousands a
/// second while a lab boots), yet what a node is served changes only with the lab. The
/// engine replaces its `Arc<Lab>` on every reload or write-back, so that `Arc`'s
/// identity is the lab's version: the files are rendered again only when the node or
/// the lab changed. A render that could not read the secrets is not kept, so it is
/// tried again at the next ask.
#[derive(Clone, Default)]
pub struct ServedCache {
    key: Option<(Mac, Arc<Lab>)>,
    files: Vec<Served>,
    renders: u64,
    /// Attached to a server: render only what needs no secret.
    remote: bool,
}

impl ServedCache {
    /// A cache for an attached console ([`served_without_secrets`]).
    pub fn without_secrets() -> ServedCache {
        ServedCache {
            remote: true,
            ..ServedCache::default()
        }
    }

    /// What `mac` gets from `lab`, rendered only if not already for this node and lab.
    pub fn get(&mut self, lab: &Arc<Lab>, mac: Mac) -> &[Served] {
        let fresh = matches!(&self.key, Some((m, l)) if *m == mac && Arc::ptr_eq(l, lab));
        if !fresh {
            self.files = if self.remote {
                served_without_secrets(lab, mac)
            } else {
                served(lab, mac)
            };
            self.renders += 1;
            let failed = self.files.iter().any(|s| s.title == "error");
            self.key = (!failed).then(|| (mac, lab.clone()));
        }
        &self.files
    }

    /// How many times files were rendered (to check the cache holds).
    pub fn renders(&self) -> u64 {
        self.renders
    }
}

impl std::fmt::Debug for ServedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedCache")
            .field("mac", &self.key.as_ref().map(|(m, _)| *m))
            .field("files", &self.files.len())
            .field("renders", &self.renders)
            .field("remote", &self.remote)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_files_are_rendered_once_per_node_and_lab() {
        let d = tempfile::tempdir().unwrap();
        let text = "name: t\nserver_address: 10.0.0.1\nboot:\n  kernel: k\nnodes:\n  - mac: 52:54:00:00:00:01\n    hostname: a\n    role: k3s-agent\n";
        let path = d.path().join("lab.yaml");
        let lab = Arc::new(Lab::parse(&path, text).unwrap());
        let known: Mac = "52:54:00:00:00:01".parse().unwrap();
        let other: Mac = "52:54:00:00:00:02".parse().unwrap();
        let mut cache = ServedCache::default();

        let files = cache.get(&lab, known).to_vec();
        let titles: Vec<&str> = files.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["iPXE script", "cmdline", "meta-data", "user-data"]);
        let token = crate::secrets::for_node(&lab, known).unwrap().k3s_token;
        assert!(token.len() >= 4);
        assert!(files.iter().all(|s| !s.text.contains(&token)), "{files:?}");
        assert_eq!(cache.renders(), 1);
        // Engine changes with the same lab: nothing rendered again.
        for _ in 0..100 {
            assert_eq!(cache.get(&lab, known), &files[..]);
        }
        assert_eq!(cache.renders(), 1);
        // Another node, then back: each is a new key.
        assert_eq!(cache.get(&lab, other)[0].title, "hold script");
        assert_eq!(cache.renders(), 2);
        cache.get(&lab, known);
        assert_eq!(cache.renders(), 3);
        // A reloaded lab (a new `Arc`, even with the same text) is a new version.
        let reloaded = Arc::new(Lab::parse(&path, text).unwrap());
        assert_eq!(cache.get(&reloaded, known), &files[..]);
        assert_eq!(cache.renders(), 4);
    }

    #[test]
    fn attached_the_served_view_reads_no_secret_and_names_user_data_as_on_the_server() {
        let d = tempfile::tempdir().unwrap();
        let text = "name: t\nserver_address: 10.0.0.1\nboot:\n  kernel: k\nnodes:\n  - mac: 52:54:00:00:00:01\n    hostname: a\n    role: k3s-agent\n";
        let lab = Arc::new(Lab::parse(&d.path().join("lab.yaml"), text).unwrap());
        let mac: Mac = "52:54:00:00:00:01".parse().unwrap();
        let mut cache = ServedCache::without_secrets();
        let files = cache.get(&lab, mac).to_vec();
        let titles: Vec<&str> = files.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "iPXE script",
                "cmdline",
                "meta-data",
                "user-data (on the server)"
            ]
        );
        assert!(files[0].text.starts_with("#!ipxe"), "{files:?}");
        assert!(files[3].text.contains("pxelab render"), "{files:?}");
        // No secret was read or made: `.pxelab/` was never created.
        assert!(!d.path().join(".pxelab").exists());
    }
}
