//! Rendering what nodes are served: iPXE scripts, kernel command lines, NoCloud data.
//!
//! ```text
//!  lab.yaml ──► context (public vars; + this node's NodeSecrets for user-data only)
//!     │
//!     ├─ boot.cmdline + roles.R.cmdline_extra + nodes[i].cmdline_extra ─► kernel_cmdline
//!     │                                         (+ `ds=nocloud;s=…/nocloud/<mac>/` last;
//!     │                                          `alpine_repo=` → the package cache)
//!     ├─ kernel, initrds + kernel_cmdline ─────────────────────────────► ipxe_script
//!     ├─ roles.R.meta_data or built-in ────────────────────────────────► meta_data
//!     └─ roles.R.user_data(_file) or built-in k3s ─────────────────────► user_data
//! ```
//!
//! Templates run through minijinja (see [`template`]) with the variables of [`context`].

pub mod context;
pub mod files;
pub mod pi;
pub mod template;
mod undefined;

use std::path::PathBuf;

use crate::config::{Lab, NodeEntry};
use crate::mac::Mac;
use crate::secrets::NodeSecrets;

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template could not be parsed or evaluated.
    #[error("template {name} for {mac}: {message}")]
    Template {
        /// Which template.
        name: String,
        /// For which node.
        mac: Mac,
        /// minijinja's message, with the template line.
        message: String,
    },
    /// The role has no template.
    #[error("role `{role}` of {mac} has no {what} template")]
    NoTemplate {
        /// The role.
        role: String,
        /// The node.
        mac: Mac,
        /// Which template.
        what: String,
    },
    /// A template file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Seconds a held machine waits between two asks.
pub const HOLD_INTERVAL_SECS: u32 = 3;

/// The kernel file for `node` (its override, else its architecture's, see [`files`]).
pub fn kernel_name(lab: &Lab, node: &NodeEntry) -> String {
    files::boot_files(lab, node).kernel
}

/// The initrd files for `node` (its override, else its architecture's), in load order.
pub fn initrd_names(lab: &Lab, node: &NodeEntry) -> Vec<String> {
    files::boot_files(lab, node).initrds
}

/// The modloop file for `node` (its override, else its architecture's), if any.
pub fn modloop_name(lab: &Lab, node: &NodeEntry) -> Option<String> {
    files::boot_files(lab, node).modloop
}

/// The iPXE script for a known node:
///
/// ```text
/// #!ipxe
/// echo pxelab: node-0 (k3s-server) a0:1a:2c:c3:d4:e0, lab pxelab-k3s
/// kernel http://S:P/assets/vmlinuz-lts initrd=initramfs-lts console=… ds=nocloud;s=http://S:P/nocloud/<mac>/
/// initrd http://S:P/assets/initramfs-lts
/// boot
/// ```
///
/// `initrd=<name>` sits on the kernel line because the 2019 iPXE of Debian predates
/// EFI LoadFile2 initrds (field notes §3).
pub fn ipxe_script(lab: &Lab, node: &NodeEntry) -> Result<String, RenderError> {
    let assets = format!("{}/assets", lab.http_base());
    let cmdline = kernel_cmdline(lab, node)?;
    let initrds = initrd_names(lab, node);
    let kernel = kernel_name(lab, node);
    let mut s = String::from("#!ipxe\n");
    s.push_str(&format!(
        "echo pxelab: {} ({}) {}, lab {}\n",
        node.hostname, node.role, node.mac, lab.file.name
    ));
    let initrd_args: String = initrds.iter().map(|i| format!(" initrd={i}")).collect();
    s.push_str(&format!(
        "kernel {assets}/{kernel}{initrd_args} {cmdline}\n"
    ));
    for i in &initrds {
        s.push_str(&format!("initrd {assets}/{i}\n"));
    }
    s.push_str("boot\n");
    Ok(s)
}

/// The wait-loop script for a held MAC (field notes §3): it prints the MAC, sleeps,
/// and asks again; once the MAC is adopted the answer is the node's real script.
///
/// The MAC is written into the URL (rather than `${net0/mac}`) so a machine that
/// booted from its second NIC still asks under the address it was held by.
pub fn hold_script(lab: &Lab, mac: Mac) -> String {
    let base = lab.http_base();
    format!(
        "#!ipxe\n\
         echo pxelab: {mac} is not in lab {name} yet: waiting to be adopted\n\
         :again\n\
         sleep {HOLD_INTERVAL_SECS}\n\
         chain --autofree {base}/boot.ipxe?mac={mac} || goto again\n\
         goto again\n",
        name = lab.file.name
    )
}

/// The `ds=` word that tells tiny-cloud where its NoCloud data is. Always the last word
/// of the command line: two OpenRC scripts stop parsing `/proc/cmdline` at its `;`
/// (field notes §4).
pub fn ds_word(lab: &Lab, mac: Mac) -> String {
    format!("ds=nocloud;s={}/nocloud/{mac}/", lab.http_base())
}

/// The kernel command line: `boot.cmdline`, the role's and the node's `cmdline_extra`
/// (all templates, rendered without secrets), whitespace collapsed, then [`ds_word`].
pub fn kernel_cmdline(lab: &Lab, node: &NodeEntry) -> Result<String, RenderError> {
    let index = lab
        .file
        .nodes
        .iter()
        .position(|n| n.mac == node.mac)
        .filter(|&i| same_entry(&lab.file.nodes[i], node));
    let specs = match index {
        Some(i) => template::cmdline_templates(lab, i),
        None => {
            // A node not (yet) in the file, e.g. while previewing an adoption.
            let mut v = template::cmdline_templates(lab, usize::MAX);
            if let Some(x) = lab
                .file
                .roles
                .get(&node.role)
                .and_then(|r| r.cmdline_extra.as_deref())
            {
                v.push(template::TemplateSpec {
                    name: format!("roles.{}.cmdline_extra", node.role),
                    text: x.to_string(),
                    origin: template::Origin::Builtin,
                });
            }
            if let Some(x) = &node.cmdline_extra {
                v.push(template::TemplateSpec {
                    name: "cmdline_extra".to_string(),
                    text: x.clone(),
                    origin: template::Origin::Builtin,
                });
            }
            v
        }
    };
    cmdline_of(lab, node, &specs)
}

/// Whether `node` is `listed` as written, but for the architecture the engine may have
/// filled in from what the firmware said.
fn same_entry(listed: &NodeEntry, node: &NodeEntry) -> bool {
    listed.arch.is_none() && {
        let mut n = listed.clone();
        n.arch = node.arch;
        n == *node
    } || listed == node
}

/// [`kernel_cmdline`] of `lab.file.nodes[index]`, for callers that walk the node list
/// (finding a node's index by its MAC, per node, made `check` of a large lab quadratic).
pub fn kernel_cmdline_at(lab: &Lab, index: usize) -> Option<Result<String, RenderError>> {
    let node = lab.file.nodes.get(index)?;
    Some(cmdline_of(
        lab,
        node,
        &template::cmdline_templates(lab, index),
    ))
}

fn cmdline_of(
    lab: &Lab,
    node: &NodeEntry,
    specs: &[template::TemplateSpec],
) -> Result<String, RenderError> {
    let vars = context::public_vars(lab, node, None);
    let mut words: Vec<String> = Vec::new();
    for spec in specs {
        let out = template::render(spec, node.mac, &vars)?;
        words.extend(out.split_whitespace().map(str::to_string));
    }
    // The package cache: `alpine_repo=` URLs under one of its upstreams point at it, so
    // the initramfs writes the cache into /etc/apk/repositories for every later `apk`.
    if let Some(cache) = lab.plan().ok().and_then(|p| p.apk_cache.as_ref()) {
        let base = lab.http_base();
        for w in &mut words {
            *w = cache.rewrite_word(&base, w);
        }
    }
    // The kernel's own messages to the syslog receiver (opt-in: only kernels with
    // netconsole built in act on it; `@/` lets the kernel pick its address and device).
    let sl = &lab.file.syslog;
    if sl.enabled && sl.netconsole {
        words.push(format!(
            "netconsole=@/,{}@{}/",
            sl.port(),
            lab.server_address
        ));
    }
    words.push(ds_word(lab, node.mac));
    Ok(words.join(" "))
}

/// NoCloud meta-data: `instance-id`, `hostname`, `local-hostname` (tiny-cloud reads
/// `hostname`, cloud-init `local-hostname`: both are sent).
pub fn meta_data(lab: &Lab, node: &NodeEntry) -> Result<String, RenderError> {
    let vars = context::public_vars(lab, node, None);
    template::render(
        &template::meta_data_template(lab, &node.role),
        node.mac,
        &vars,
    )
}

/// NoCloud user-data: the role's template rendered with this node's secrets.
pub fn user_data(
    lab: &Lab,
    node: &NodeEntry,
    secrets: &NodeSecrets,
) -> Result<String, RenderError> {
    let vars = context::secret_vars(lab, node, secrets);
    let spec = template::user_data_template(lab, &node.role, node.mac)?;
    template::render(&spec, node.mac, &vars)
}

/// NoCloud vendor-data: an empty but valid cloud-config.
pub fn vendor_data(_lab: &Lab, _node: &NodeEntry) -> String {
    "#cloud-config\n{}\n".to_string()
}

/// NoCloud network-config: version 1 with no entries (the kernel's `ip=dhcp` already
/// configured the interface).
pub fn network_config(_lab: &Lab, _node: &NodeEntry) -> String {
    "version: 1\nconfig: []\n".to_string()
}
