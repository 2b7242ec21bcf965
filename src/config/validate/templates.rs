//! Checks of the templates: each compiles, and renders for every node with fake secrets,
//! so an undefined variable shows up in `check` rather than on a booting node.

use super::Validator;
use crate::config::spans::Seg;
use crate::config::{Location, Problem, Severity};
use crate::render::context::{public_vars, secret_vars};
use crate::render::template::{
    self, cmdline_templates, compile, meta_data_template, user_data_template, Origin, TemplateSpec,
};
use crate::secrets::NodeSecrets;

impl Validator<'_> {
    /// Location of a template problem: inside a block scalar the template's own line is
    /// counted from the line after the `|`; a file template points into that file.
    fn template_location(&self, spec: &TemplateSpec, tmpl_line: Option<usize>) -> Location {
        match &spec.origin {
            Origin::File { path, .. } => Location {
                path: path.clone(),
                line: tmpl_line.unwrap_or(1),
                column: 1,
            },
            Origin::Inline(keys) => {
                let segs = owned_segs(keys);
                let range = self.spans.range(&segs);
                let block = range
                    .as_ref()
                    .and_then(|r| self.lab.source.get(r.clone()))
                    .map(|t| t.starts_with('|') || t.starts_with('>'))
                    .unwrap_or(false);
                let (line, column) = self.spans.locate(&segs);
                match (block, tmpl_line) {
                    (true, Some(l)) => {
                        let line = line + l;
                        let text = self.lab.source.lines().nth(line - 1).unwrap_or("");
                        let column = text.len() - text.trim_start().len() + 1;
                        Location {
                            path: self.lab.path.clone(),
                            line,
                            column,
                        }
                    }
                    _ => Location {
                        path: self.lab.path.clone(),
                        line,
                        column,
                    },
                }
            }
            Origin::Builtin => Location {
                path: self.lab.path.clone(),
                line: 1,
                column: 1,
            },
        }
    }

    fn template_problem(&mut self, spec: &TemplateSpec, e: &minijinja::Error) {
        let location = Some(self.template_location(spec, e.line()));
        self.r.problems.push(Problem {
            severity: Severity::Error,
            location,
            message: format!("{}: {}", spec.name, template::describe(e)),
        });
    }

    /// Compiles every template once, then renders each node's templates with fake
    /// secrets so undefined variables show up now rather than on a booting node.
    pub(super) fn templates(&mut self) {
        let lab = self.lab;
        let mut broken: Vec<String> = Vec::new();
        let mut specs: Vec<TemplateSpec> = cmdline_templates(lab, usize::MAX);
        for (name, r) in &lab.file.roles {
            if r.user_data.is_some() || r.user_data_file.is_some() {
                if let Ok(s) = user_data_template(lab, name, crate::Mac::default()) {
                    specs.push(s);
                }
            }
            specs.push(meta_data_template(lab, name));
            if let Some(x) = &r.cmdline_extra {
                specs.push(TemplateSpec {
                    name: format!("roles.{name}.cmdline_extra"),
                    text: x.clone(),
                    origin: Origin::Inline(vec![
                        "roles".into(),
                        name.clone(),
                        "cmdline_extra".into(),
                    ]),
                });
            }
        }
        for i in 0..lab.file.nodes.len() {
            specs.extend(cmdline_templates(lab, i).into_iter().skip(1));
        }
        for s in &specs {
            if let Err(e) = compile(s) {
                if !broken.contains(&s.name) {
                    broken.push(s.name.clone());
                    self.template_problem(s, &e);
                }
            }
        }
        let fake = NodeSecrets {
            k3s_token: "K10-check".to_string(),
            operator_public_key: Some("ssh-ed25519 AAAA operator".to_string()),
            host_private_key: Some(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----"
                    .to_string(),
            ),
            host_public_key: Some("ssh-ed25519 AAAA host".to_string()),
            host_private_key_dropbear: Some("AAAAC3NzaC1lZDI1NTE5AAAAQ".to_string()),
            node_password: Some("check".to_string()),
            ..NodeSecrets::default()
        };
        let known = lab.role_names();
        for (i, node) in lab.file.nodes.iter().enumerate() {
            if !known.contains(&node.role) {
                continue;
            }
            let public = public_vars(lab, node, None);
            for s in cmdline_templates(lab, i) {
                if broken.contains(&s.name) {
                    continue;
                }
                let Some(out) = self.render_check(&s, node.mac, &public, &mut broken) else {
                    continue;
                };
                let found = if out.split_whitespace().any(|w| w.starts_with("ds=")) {
                    Some((Severity::Error, "sets ds= itself; pxelab appends `ds=nocloud;s=…` as the last word, remove it".to_string()))
                } else {
                    self.apkovl_problem(&out)
                };
                if let Some((severity, msg)) = found {
                    self.template_finding(&s, severity, msg, &mut broken);
                }
            }
            let meta = meta_data_template(lab, &node.role);
            if !broken.contains(&meta.name) {
                self.render_check(&meta, node.mac, &public, &mut broken);
            }
            if let Ok(ud) = user_data_template(lab, &node.role, node.mac) {
                if !broken.contains(&ud.name) {
                    let vars = secret_vars(lab, node, &fake);
                    if let Some(out) = self.render_check(&ud, node.mac, &vars, &mut broken) {
                        if let Some(msg) = user_data_kind_problem(&out) {
                            self.template_finding(&ud, Severity::Error, msg, &mut broken);
                        }
                    }
                }
            }
        }
    }

    /// Renders a template for a node; a failure is reported (once per template) and
    /// gives `None`.
    fn render_check<S: serde::Serialize>(
        &mut self,
        spec: &TemplateSpec,
        mac: crate::Mac,
        vars: &S,
        broken: &mut Vec<String>,
    ) -> Option<String> {
        match template::render_text(spec, vars) {
            Err((e, why)) => {
                broken.push(spec.name.clone());
                let location = Some(self.template_location(spec, e.line()));
                self.r.problems.push(Problem {
                    severity: Severity::Error,
                    location,
                    message: format!("{} (for {mac}): {why}", spec.name),
                });
                None
            }
            Ok(out) => Some(out),
        }
    }

    /// Reports what a template's output shows, once per template.
    fn template_finding(
        &mut self,
        spec: &TemplateSpec,
        severity: Severity,
        msg: String,
        broken: &mut Vec<String>,
    ) {
        broken.push(spec.name.clone());
        let location = Some(self.template_location(spec, None));
        self.r.problems.push(Problem {
            severity,
            location,
            message: format!("{}: {msg}", spec.name),
        });
    }
}

/// The first lines tiny-cloud acts on: it reads user-data's first line to tell its kind
/// and ignores anything else (field notes §5).
const USER_DATA_KINDS: [&str; 3] = ["#cloud-config", "#alpine-config", "#!"];

/// Why tiny-cloud would ignore this rendered user-data, if it would.
fn user_data_kind_problem(out: &str) -> Option<String> {
    let first = out.lines().next().unwrap_or("");
    if USER_DATA_KINDS.iter().any(|k| first.starts_with(k)) {
        return None;
    }
    let shown: String = first.chars().take(40).collect();
    let what = if shown.trim().is_empty() {
        "is empty".to_string()
    } else {
        format!("is `{shown}`")
    };
    Some(format!(
        "its first line {what}: tiny-cloud ignores user-data that does not start with #cloud-config, #alpine-config or #! (a script), so the node is never configured; make `#cloud-config` its first line"
    ))
}

fn owned_segs(keys: &[String]) -> Vec<Seg<'_>> {
    keys.iter()
        .map(|k| match k.parse::<usize>() {
            Ok(i) => Seg::Index(i),
            Err(_) => Seg::Key(k.as_str()),
        })
        .collect()
}
