//! Rendering what nodes are served: iPXE scripts, kernel command lines, NoCloud data.
//!
//! Templates run through minijinja with a fixed set of variables (see [`NodeContext`]).

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
        /// minijinja's message.
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
}

/// The iPXE script for a known node.
pub fn ipxe_script(lab: &Lab, node: &NodeEntry) -> Result<String, RenderError> {
    let base = lab.http_base();
    let cmdline = kernel_cmdline(lab, node)?;
    let mut s = String::from("#!ipxe\n");
    let initrds = node
        .initrds
        .clone()
        .unwrap_or_else(|| lab.file.boot.initrds.clone());
    let kernel = node
        .kernel
        .clone()
        .unwrap_or_else(|| lab.file.boot.kernel.clone());
    let initrd_args: String = initrds.iter().map(|i| format!(" initrd={i}")).collect();
    s.push_str(&format!(
        "kernel {base}/assets/{kernel}{initrd_args} {cmdline}\n"
    ));
    for i in &initrds {
        s.push_str(&format!("initrd {base}/assets/{i}\n"));
    }
    s.push_str("boot\n");
    Ok(s)
}

/// The wait-loop script for a held MAC.
pub fn hold_script(lab: &Lab, mac: Mac) -> String {
    let base = lab.http_base();
    format!(
        "#!ipxe\necho pxelab: {mac} is not in lab {} yet; waiting to be adopted\n:again\nsleep 3\nchain --autofree {base}/boot.ipxe?mac=${{net0/mac}} || goto again\n",
        lab.file.name
    )
}

/// The kernel command line, with `ds=nocloud;s=…` as the last word.
pub fn kernel_cmdline(lab: &Lab, node: &NodeEntry) -> Result<String, RenderError> {
    let mut c = lab.file.boot.cmdline.trim().to_string();
    if let Some(x) = &node.cmdline_extra {
        c.push(' ');
        c.push_str(x);
    }
    c.push_str(&format!(
        " ds=nocloud;s={}/nocloud/{}/",
        lab.http_base(),
        node.mac
    ));
    Ok(c.trim().to_string())
}

/// NoCloud meta-data.
pub fn meta_data(_lab: &Lab, node: &NodeEntry) -> Result<String, RenderError> {
    Ok(format!(
        "instance-id: {}\nhostname: {}\nlocal-hostname: {}\n",
        node.mac.compact(),
        node.hostname,
        node.hostname
    ))
}

/// NoCloud user-data.
pub fn user_data(
    _lab: &Lab,
    node: &NodeEntry,
    _secrets: &NodeSecrets,
) -> Result<String, RenderError> {
    Ok(format!("#cloud-config\nhostname: {}\n", node.hostname))
}
