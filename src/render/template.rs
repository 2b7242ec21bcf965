//! Template lookup (role override, file, built-in) and minijinja evaluation.
//!
//! Templates are Jinja (minijinja) with `trim_blocks` and `lstrip_blocks` on, so a
//! `{% for %}` line leaves no blank line behind, and strict undefined variables, so a
//! misspelt variable is an error at `pxelab check` instead of an empty string on a node.

use std::path::PathBuf;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::undefined;
use super::RenderError;
use crate::config::Lab;
use crate::mac::Mac;

/// The built-in user-data of the `k3s-server` and `k3s-agent` roles.
pub const K3S_USER_DATA: &str = include_str!("templates/k3s-user-data.yaml.j2");
/// The built-in meta-data of every role.
pub const META_DATA: &str = include_str!("templates/meta-data.yaml.j2");

/// Where a template came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into pxelab.
    Builtin,
    /// Inline in lab.yaml at this path (e.g. `["roles", "web", "user_data"]`).
    Inline(Vec<String>),
    /// A file named in lab.yaml at this path.
    File {
        /// The key that names the file.
        key: Vec<String>,
        /// The file (resolved against lab.yaml's folder).
        path: PathBuf,
    },
}

/// One template and where it came from.
#[derive(Debug, Clone)]
pub struct TemplateSpec {
    /// A readable name: `roles.web.user_data`, a file path, or `built-in k3s user-data`.
    pub name: String,
    /// The template text.
    pub text: String,
    /// Its origin, for error locations.
    pub origin: Origin,
}

fn inline(path: &[&str], text: &str) -> TemplateSpec {
    TemplateSpec {
        name: path.join("."),
        text: text.to_string(),
        origin: Origin::Inline(path.iter().map(|s| s.to_string()).collect()),
    }
}

/// The user-data template of `role`: `roles.<role>.user_data`, else
/// `roles.<role>.user_data_file`, else the built-in one for the k3s roles.
pub fn user_data_template(lab: &Lab, role: &str, mac: Mac) -> Result<TemplateSpec, RenderError> {
    let section = lab.file.roles.get(role);
    if let Some(t) = section.and_then(|r| r.user_data.as_deref()) {
        return Ok(inline(&["roles", role, "user_data"], t));
    }
    if let Some(f) = section.and_then(|r| r.user_data_file.as_ref()) {
        let path = lab.resolve(f);
        let text = std::fs::read_to_string(&path).map_err(|source| RenderError::Io {
            path: path.clone(),
            source,
        })?;
        return Ok(TemplateSpec {
            name: path.display().to_string(),
            text,
            origin: Origin::File {
                key: vec!["roles".into(), role.into(), "user_data_file".into()],
                path,
            },
        });
    }
    match role {
        "k3s-server" | "k3s-agent" => Ok(TemplateSpec {
            name: "built-in k3s user-data".to_string(),
            text: K3S_USER_DATA.to_string(),
            origin: Origin::Builtin,
        }),
        _ => Err(RenderError::NoTemplate {
            role: role.to_string(),
            mac,
            what: "user-data".to_string(),
        }),
    }
}

/// The meta-data template of `role`: `roles.<role>.meta_data`, else the built-in one.
pub fn meta_data_template(lab: &Lab, role: &str) -> TemplateSpec {
    match lab
        .file
        .roles
        .get(role)
        .and_then(|r| r.meta_data.as_deref())
    {
        Some(t) => inline(&["roles", role, "meta_data"], t),
        None => TemplateSpec {
            name: "built-in meta-data".to_string(),
            text: META_DATA.to_string(),
            origin: Origin::Builtin,
        },
    }
}

/// The kernel command line pieces for the node at `index` of `nodes`: `boot.cmdline`,
/// the role's `cmdline_extra`, the node's `cmdline_extra` (each a template).
pub fn cmdline_templates(lab: &Lab, index: usize) -> Vec<TemplateSpec> {
    let mut v = vec![inline(&["boot", "cmdline"], &lab.file.boot.cmdline)];
    let Some(node) = lab.file.nodes.get(index) else {
        return v;
    };
    if let Some(x) = lab
        .file
        .roles
        .get(&node.role)
        .and_then(|r| r.cmdline_extra.as_deref())
    {
        v.push(inline(&["roles", &node.role, "cmdline_extra"], x));
    }
    if let Some(x) = &node.cmdline_extra {
        let i = index.to_string();
        v.push(TemplateSpec {
            name: format!("nodes[{i}].cmdline_extra"),
            text: x.clone(),
            origin: Origin::Inline(vec!["nodes".into(), i, "cmdline_extra".into()]),
        });
    }
    v
}

/// The environment every template is compiled in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// A minijinja error as one line: what went wrong and the template line.
pub fn describe(e: &minijinja::Error) -> String {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    match e.line() {
        Some(l) => format!("{what} (template line {l})"),
        None => what,
    }
}

/// Compiles a template without rendering it: `Err` carries minijinja's error.
pub fn compile(spec: &TemplateSpec) -> Result<(), minijinja::Error> {
    let env = environment();
    env.template_from_named_str(&spec.name, &spec.text)
        .map(|_| ())
}

/// Renders a template with `vars` for `mac`.
pub fn render<S: Serialize>(
    spec: &TemplateSpec,
    mac: Mac,
    vars: &S,
) -> Result<String, RenderError> {
    render_text(spec, vars).map_err(|(_, message)| RenderError::Template {
        name: spec.name.clone(),
        mac,
        message,
    })
}

/// Compiles and renders; an error comes with its one-line message, in which an
/// undefined variable is named with the closest one that exists.
pub fn render_text<S: Serialize>(
    spec: &TemplateSpec,
    vars: &S,
) -> Result<String, (minijinja::Error, String)> {
    let env = environment();
    let tmpl = env
        .template_from_named_str(&spec.name, &spec.text)
        .map_err(|e| {
            let m = describe(&e);
            (e, m)
        })?;
    tmpl.render(minijinja::value::Serde(vars)).map_err(|e| {
        let mut message = describe(&e);
        if e.kind() == minijinja::ErrorKind::UndefinedError {
            let known = serde_json::to_value(vars).unwrap_or_default();
            let used = tmpl.undeclared_variables(true);
            if let Some(hint) = undefined::hint(&used, &known, &spec.text, e.line()) {
                message = match e.line() {
                    Some(l) => format!("undefined value: {hint} (template line {l})"),
                    None => format!("undefined value: {hint}"),
                };
            }
        }
        (e, message)
    })
}
