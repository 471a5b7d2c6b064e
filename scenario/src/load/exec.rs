//! `script` and `command`: what runs, its environment and its check.

use std::time::Duration;

use serde_json::Value;

use super::fields::{Fields, Item, Loader, R};
use crate::chainsaw;
use crate::model::{Action, Command, Script};

impl Loader {
    pub(super) fn env(&self, f: &Fields<'_>) -> R<Vec<(String, String)>> {
        let Some(env) = f.get("env") else { return Ok(Vec::new()) };
        let mut out: Vec<(String, String)> = Vec::new();
        for el in self.list(&env, "{name, value}")? {
            let e = self.fields(&el, "an environment variable", &["name", "value"], &["compiler"])?;
            let name_item = self.required(&e, "name", "the variable's name")?;
            let name = self.nonempty_string(&name_item)?;
            if out.iter().any(|(n, _)| *n == name) {
                return Err(self.err_at(name_item.node, &name_item.path, format!("{name} is set twice")));
            }
            let value = match e.get("value") {
                Some(v) => {
                    let s = self.scalar_string(&v)?;
                    if s.starts_with('(') && s.ends_with(')') {
                        return Err(self.err_at(
                            v.node,
                            &v.path,
                            "not supported by nodekit (Chainsaw binding expressions); write the value",
                        ));
                    }
                    s
                }
                None => String::new(),
            };
            out.push((name, value));
        }
        Ok(out)
    }

    pub(super) fn check_tree(&self, f: &Fields<'_>) -> R<Option<Value>> {
        let Some(c) = f.get("check") else { return Ok(None) };
        let value = self.mapping_json(&c, "check (an assertion tree over $error, $stdout, $stderr)")?;
        Ok(Some(value))
    }

    pub(super) fn script(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(
            item,
            "script",
            &["content", "shell", "shellArgs", "env", "check", "timeout", "skipLogOutput", "skipCommandOutput"],
            chainsaw::EXEC_FOREIGN,
        )?;
        let content = self.nonempty_string(&self.required(&f, "content", "the script to run")?)?;
        let shell = self.opt_nonempty(&f, "shell")?;
        let shell_args = match f.get("shellArgs") {
            Some(a) => self.string_list(&a)?,
            None => Vec::new(),
        };
        if shell.is_none()
            && let Some(a) = f.get("shellArgs")
        {
            return Err(self.err_at(a.anchor(), &a.path, "shellArgs needs shell"));
        }
        let env = self.env(&f)?;
        let check = self.check_tree(&f)?;
        self.cosmetic(&f)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        Ok((Action::Script(Script { content, shell, shell_args, env, check }), timeout))
    }

    pub(super) fn command(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(
            item,
            "command",
            &["entrypoint", "args", "env", "check", "timeout", "skipLogOutput", "skipCommandOutput"],
            chainsaw::EXEC_FOREIGN,
        )?;
        let entrypoint =
            self.nonempty_string(&self.required(&f, "entrypoint", "the program to run, like kubectl")?)?;
        let args = match f.get("args") {
            Some(a) => self.string_list(&a)?,
            None => Vec::new(),
        };
        let env = self.env(&f)?;
        let check = self.check_tree(&f)?;
        self.cosmetic(&f)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        Ok((Action::Command(Command { entrypoint, args, env, check }), timeout))
    }
}
