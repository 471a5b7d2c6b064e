//! Operations: the shared fields, exactly one action, and which actions each block allows.

use std::time::Duration;

use super::document::Dialect;
use super::fields::{Item, Loader, R};
use super::text::{and_list, child, suggest};
use super::yaml::{Node, Yaml};
use crate::chainsaw;
use crate::model::{Action, Operation};

/// Which list of a step an operation is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Block {
    Try,
    Catch,
    Finally,
    Cleanup,
    /// A Chainsaw Test's `spec.catch`.
    TestCatch,
}

impl Block {
    pub(super) fn name(self) -> &'static str {
        match self {
            Block::Try => "try",
            Block::Catch | Block::TestCatch => "catch",
            Block::Finally => "finally",
            Block::Cleanup => "cleanup",
        }
    }
}

/// Every action, in the order messages list them.
const ALL_ACTIONS: &[&str] = &[
    "apply", "assert", "capture", "command", "create", "delete", "describe", "error", "events", "fault", "get", "heal",
    "patch", "podLogs", "script", "sleep", "traffic", "update", "wait",
];
/// What a Chainsaw Test may use in `try`.
const TEST_ACTIONS: &[&str] = &[
    "apply", "assert", "command", "create", "delete", "describe", "error", "events", "get", "patch", "podLogs",
    "script", "sleep", "update", "wait",
];
/// What Chainsaw allows in catch, finally and cleanup.
const CATCH_ACTIONS: &[&str] =
    &["command", "delete", "describe", "events", "get", "podLogs", "script", "sleep", "wait"];
/// nodekit's additions: a Chainsaw Test may not use them.
const NODEKIT_ACTIONS: &[&str] = &["capture", "fault", "heal", "traffic"];

/// What an operation of a block may hold: the shared fields and the actions.
struct Menu {
    shared: &'static [&'static str],
    actions: &'static [&'static str],
}

impl Menu {
    fn new(block: Block, dialect: Dialect) -> Self {
        let (shared, actions): (&'static [&'static str], _) = match (block, dialect) {
            (Block::Try, Dialect::Scenario) => (&["description", "continueOnError"], ALL_ACTIONS),
            (Block::Try, Dialect::Test) => (&["description", "continueOnError"], TEST_ACTIONS),
            _ => (&["description"], CATCH_ACTIONS),
        };
        Menu { shared, actions }
    }

    /// For messages.
    fn allowed(&self) -> String {
        format!("allowed: {} and one action of {}", self.shared.join(", "), self.actions.join(", "))
    }
}

impl Loader {
    pub(super) fn operations(&mut self, item: &Item<'_>, block: Block) -> R<Vec<Operation>> {
        let list = self.list(item, "operations")?;
        let mut out = Vec::with_capacity(list.len());
        for el in &list {
            out.push(self.operation(el, block)?);
        }
        Ok(out)
    }

    fn operation(&mut self, item: &Item<'_>, block: Block) -> R<Operation> {
        let menu = Menu::new(block, self.dialect);
        let Yaml::Map(entries) = &item.node.v else {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!(
                    "an operation is a mapping with one action, found {}; {}",
                    item.node.v.type_name(),
                    menu.allowed()
                ),
            ));
        };
        let mut found: Option<(&str, &Node, &Node)> = None;
        let mut description = None;
        let mut continue_on_error = false;
        for (k, v) in entries {
            let Yaml::Str(key) = &k.v else {
                let shown = k.v.scalar_text().unwrap_or_else(|| k.v.type_name().to_string());
                return Err(self.err_at(k, &item.path, format!("unknown operation key {shown}; {}", menu.allowed())));
            };
            let path = child(&item.path, key);
            if menu.shared.contains(&key.as_str()) {
                let field = Item { key: Some(k), node: v, path };
                if !field.is_null() {
                    match key.as_str() {
                        "description" => description = Some(self.string(&field)?),
                        _ => continue_on_error = self.boolean(&field)?,
                    }
                }
                continue;
            }
            if menu.actions.contains(&key.as_str()) {
                if let Some((first, _, _)) = found {
                    return Err(self.err_at(
                        k,
                        &path,
                        format!("an operation must have exactly one action, found {}", and_list(&[first, key])),
                    ));
                }
                found = Some((key.as_str(), k, v));
                continue;
            }
            if let Some(message) = self.refused_key(key, v, block, &menu) {
                return Err(self.err_at(k, &path, message));
            }
        }
        let Some((action_key, key_node, value)) = found else {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!("an operation must have exactly one action, found none; {}", menu.allowed()),
            ));
        };
        let action_item = Item { key: Some(key_node), node: value, path: child(&item.path, action_key) };
        let (action, timeout) = self.action(action_key, &action_item)?;
        Ok(Operation { description, continue_on_error, timeout, line: item.node.line, action })
    }

    /// Why an operation key that is neither a shared field nor an action of the block is
    /// refused (`None`: it is harmless and ignored).
    fn refused_key(&self, key: &str, value: &Node, block: Block, menu: &Menu) -> Option<String> {
        let message = match key {
            "proxy" => "Chainsaw's proxy operation is not supported by nodekit".to_string(),
            "compiler" => return chainsaw::foreign_field("compiler", value),
            k if NODEKIT_ACTIONS.contains(&k) && self.dialect == Dialect::Test => chainsaw::nodekit_addition(k),
            "continueOnError" => format!(
                "continueOnError is not allowed in {} (Chainsaw runs every operation there); {}",
                block.name(),
                menu.allowed()
            ),
            k if ALL_ACTIONS.contains(&k) => {
                format!("{k} is not allowed in {}; allowed there: {}", block.name(), CATCH_ACTIONS.join(", "))
            }
            k => {
                let mut names: Vec<&str> = menu.shared.to_vec();
                names.extend_from_slice(menu.actions);
                let hint = suggest(k, &names).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
                format!("unknown operation key {k:?}{hint}; {}", menu.allowed())
            }
        };
        Some(message)
    }

    fn action(&mut self, key: &str, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        Ok(match key {
            "apply" | "create" | "patch" | "update" => {
                let (res, timeout) = self.resources(item, key)?;
                let action = match key {
                    "apply" => Action::Apply(res),
                    "create" => Action::Create(res),
                    "patch" => Action::Patch(res),
                    _ => Action::Update(res),
                };
                (action, timeout)
            }
            "assert" | "error" => {
                let (check, timeout) = self.check(item, key)?;
                let action = if key == "assert" { Action::Assert(check) } else { Action::Error(check) };
                (action, timeout)
            }
            "delete" => self.delete(item)?,
            "wait" => self.wait(item)?,
            "sleep" => {
                let f = self.fields(item, "sleep", &["duration"], &[])?;
                let d = self.required(&f, "duration", "how long to sleep, like \"2s\"")?;
                (Action::Sleep(self.duration(&d, false)?), None)
            }
            "script" => self.script(item)?,
            "command" => self.command(item)?,
            "events" => self.events(item)?,
            "podLogs" => self.pod_logs(item)?,
            "describe" | "get" => {
                let extra: &[&str] = if key == "describe" { &["showEvents"] } else { &["format"] };
                let (q, timeout) = self.query(item, key, extra)?;
                (if key == "describe" { Action::Describe(q) } else { Action::Get(q) }, timeout)
            }
            "fault" => (Action::Fault(self.fault(item)?), None),
            "heal" => (Action::Heal(self.heal(item)?), None),
            "traffic" => self.traffic(item)?,
            "capture" => (Action::Capture(self.capture(item)?), None),
            other => {
                return Err(self.err_at(
                    item.anchor(),
                    &item.path,
                    format!("unknown action {other:?}; allowed: {}", ALL_ACTIONS.join(", ")),
                ));
            }
        })
    }
}
