//! The theme's slots: one table per section (`ui`, `event`, `state`), each slot with what
//! it colours. Data: the `slots!` macro turns each table into the theme's struct and
//! the patch a theme file fills in.

use serde::Deserialize;

use super::color::{SlotValue, StyleSpec};
use crate::engine::NodeState;

macro_rules! slots {
    ($(#[$doc:meta])* $name:ident, $patch:ident, $rename:literal, $section:literal,
     [$($(#[$fdoc:meta])* $field:ident),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: StyleSpec,)*
        }

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = $rename)]
        pub(super) struct $patch {
            $(#[serde(default)] $field: Option<SlotValue>,)*
        }

        impl $patch {
            pub(super) fn apply(self, to: &mut $name) {
                $(if let Some(v) = self.$field { to.$field = v.0; })*
            }
            pub(super) fn missing(&self, out: &mut Vec<String>) {
                $(if self.$field.is_none() {
                    let n = stringify!($field);
                    let n = if $rename == "kebab-case" { n.replace('_', "-") } else { n.to_string() };
                    out.push(format!("{}.{}", $section, n));
                })*
            }
        }
    };
}

slots!(
    /// Slots of the console's furniture.
    UiSlots, UiPatch, "snake_case", "ui",
    [
        /// The whole frame (its `bg` paints every cell no widget colours).
        background,
        /// Plain text.
        text,
        /// Secondary text (column separators, hints).
        muted,
        /// The header bar.
        header,
        /// The lab name in the header.
        header_title,
        /// A server that is up.
        server_up,
        /// A server that is down or not started.
        server_down,
        /// Pane borders.
        border,
        /// The border of the focused pane.
        border_focus,
        /// Pane titles.
        title,
        /// The node table's header row.
        table_header,
        /// The selected row.
        selection,
        /// Dialog body.
        dialog,
        /// Dialog border and title.
        dialog_border,
        /// A text field being edited.
        input,
        /// The highlighted choice in a list.
        choice,
        /// The footer line.
        footer,
        /// Keys in the footer and help.
        footer_key,
        /// Keys of dangerous actions (forget, reboot).
        danger,
        /// Flash: information.
        flash_info,
        /// Flash: warning.
        flash_warn,
        /// Flash: error.
        flash_error,
        /// Masked secrets in served data.
        masked,
        /// Timeline: a step done.
        step_done,
        /// Timeline: the step in progress.
        step_current,
        /// Timeline: a step not reached.
        step_pending,
        /// Timeline: the failed step.
        step_failed,
    ]
);

slots!(
    /// Slots for the event pane, by kind of event.
    EventSlots, EventPatch, "snake_case", "event",
    [
        /// The time column.
        time,
        /// The node column.
        node,
        /// Servers and lab.yaml.
        lifecycle,
        /// DHCP.
        dhcp,
        /// TFTP.
        tftp,
        /// HTTP.
        http,
        /// Adoption and node changes.
        inventory,
        /// SSH and tiny-cloud.
        ssh,
        /// k3s.
        k3s,
        /// Anything flagged as a problem (refusals, failures).
        problem,
    ]
);

slots!(
    /// Slots for node rows, one per state.
    StateSlots, StatePatch, "kebab-case", "state",
    [
        /// idle
        idle,
        /// discovered
        discovered,
        /// held
        held,
        /// adopted
        adopted,
        /// offered
        offered,
        /// ipxe-loaded
        ipxe_loaded,
        /// script-served
        script_served,
        /// kernel
        kernel,
        /// initrd
        initrd,
        /// config-fetched
        config_fetched,
        /// ssh-up
        ssh_up,
        /// tiny-cloud
        tiny_cloud,
        /// bootstrapped
        bootstrapped,
        /// k3s-starting
        k3s_starting,
        /// joined
        joined,
        /// ready
        ready,
        /// failed
        failed,
    ]
);

impl StateSlots {
    /// The style of a node state.
    pub fn of(&self, s: NodeState) -> StyleSpec {
        match s {
            NodeState::Idle => self.idle,
            NodeState::Discovered => self.discovered,
            NodeState::Held => self.held,
            NodeState::Adopted => self.adopted,
            NodeState::Offered => self.offered,
            NodeState::IpxeLoaded => self.ipxe_loaded,
            NodeState::ScriptServed => self.script_served,
            NodeState::Kernel => self.kernel,
            NodeState::Initrd => self.initrd,
            NodeState::ConfigFetched => self.config_fetched,
            NodeState::SshUp => self.ssh_up,
            NodeState::TinyCloud => self.tiny_cloud,
            NodeState::Bootstrapped => self.bootstrapped,
            NodeState::K3sStarting => self.k3s_starting,
            NodeState::Joined => self.joined,
            NodeState::Ready => self.ready,
            NodeState::Failed => self.failed,
        }
    }
}
