//! The operations that look at objects: wait, get, describe, events (a collector, or in a
//! Scenario an expectation) and podLogs.

use std::time::Duration;

use super::document::Dialect;
use super::fields::{Fields, Item, Loader, R};
use crate::chainsaw;
use crate::model::{Action, CountRule, EventExpectation, Events, ObjectQuery, PodLogs, Wait, WaitFor};

impl Loader {
    /// apiVersion, kind, namespace and a name or a selector.
    pub(super) fn query(&self, item: &Item<'_>, what: &str, extra: &[&str]) -> R<(ObjectQuery, Option<Duration>)> {
        let mut allowed = vec!["apiVersion", "kind", "namespace", "name", "selector", "timeout"];
        allowed.extend_from_slice(extra);
        let f = self.fields(item, what, &allowed, chainsaw::COLLECTOR_FOREIGN)?;
        let q = self.object_query(&f, what)?;
        self.cosmetic(&f)?;
        Ok((q, self.opt_duration(&f, "timeout", true)?))
    }

    pub(super) fn object_query(&self, f: &Fields<'_>, what: &str) -> R<ObjectQuery> {
        let api_version =
            self.nonempty_string(&self.required(f, "apiVersion", &format!("{what} needs apiVersion and kind"))?)?;
        let kind = self.nonempty_string(&self.required(f, "kind", &format!("{what} needs apiVersion and kind"))?)?;
        let (name, selector) = self.name_or_selector(f)?;
        Ok(ObjectQuery { api_version, kind, namespace: self.opt_nonempty(f, "namespace")?, name, selector })
    }

    pub(super) fn name_or_selector(&self, f: &Fields<'_>) -> R<(Option<String>, Option<String>)> {
        let name = self.opt_nonempty(f, "name")?;
        let selector = self.opt_nonempty(f, "selector")?;
        if name.is_some()
            && let Some(s) = f.get("selector")
        {
            return Err(self.err_at(s.anchor(), &s.path, "name and selector are exclusive; give one"));
        }
        Ok((name, selector))
    }

    /// Fields that only change how Chainsaw prints things: checked, then ignored.
    pub(super) fn cosmetic(&self, f: &Fields<'_>) -> R<()> {
        if let Some(format) = f.get("format") {
            let s = self.string(&format)?;
            if s != "json" && s != "yaml" {
                return Err(self.err_at(
                    format.node,
                    &format.path,
                    format!("unknown format {s:?}; allowed: json, yaml"),
                ));
            }
        }
        for flag in ["showEvents", "skipLogOutput", "skipCommandOutput"] {
            self.opt_bool(f, flag)?;
        }
        Ok(())
    }

    pub(super) fn wait(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(
            item,
            "wait",
            &["apiVersion", "kind", "namespace", "name", "selector", "timeout", "for", "format"],
            chainsaw::COLLECTOR_FOREIGN,
        )?;
        let target = self.object_query(&f, "wait")?;
        self.cosmetic(&f)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let for_item = self.required(&f, "for", "what to wait for: creation, deletion, condition or jsonPath")?;
        let for_ = self.wait_for(&for_item)?;
        Ok((Action::Wait(Wait { target, for_ }), timeout))
    }

    fn wait_for(&self, item: &Item<'_>) -> R<WaitFor> {
        const RULE: &str = "wait for exactly one of creation, deletion, condition, jsonPath";
        let w = self.fields(item, "for", &["creation", "deletion", "condition", "jsonPath"], &[])?;
        let (kind, value) = self.exactly_one(&w, RULE)?;
        Ok(match kind.as_str() {
            "creation" | "deletion" => {
                if !value.is_null() {
                    self.fields(&value, &kind, &[], &[])?;
                }
                if kind == "creation" { WaitFor::Creation } else { WaitFor::Deletion }
            }
            "condition" => {
                let cf = self.fields(&value, "condition", &["name", "value"], &[])?;
                let name = self.nonempty_string(&self.required(&cf, "name", "the condition's type, like Ready")?)?;
                let value = match cf.get("value") {
                    Some(v) => self.scalar_string(&v)?,
                    None => "true".to_string(),
                };
                WaitFor::Condition { name, value }
            }
            "jsonPath" => {
                let jf = self.fields(&value, "jsonPath", &["path", "value"], &[])?;
                let path = self.nonempty_string(&self.required(&jf, "path", "a JSONPath like '{.status.phase}'")?)?;
                let value =
                    self.scalar_string(&self.required(&jf, "value", "the value to wait for, like Running")?)?;
                WaitFor::JsonPath { path, value }
            }
            _ => return Err(self.err_at(item.anchor(), &item.path, RULE)),
        })
    }

    pub(super) fn events(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        const EXPECT: &[&str] = &["reason", "message", "type", "involvedObject", "count", "minCount"];
        let allowed: Vec<&str> = match self.dialect {
            Dialect::Scenario => {
                ["namespace", "name", "selector", "timeout", "format"].iter().chain(EXPECT).copied().collect()
            }
            Dialect::Test => vec!["namespace", "name", "selector", "timeout", "format"],
        };
        if self.dialect == Dialect::Test {
            self.refuse_keys(item, EXPECT, |k| chainsaw::nodekit_addition(&format!("events.{k}")))?;
        }
        let f = self.fields(item, "events", &allowed, chainsaw::COLLECTOR_FOREIGN)?;
        self.cosmetic(&f)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let (name, selector) = self.name_or_selector(&f)?;
        let namespace = self.opt_nonempty(&f, "namespace")?;
        let expect = if EXPECT.iter().any(|k| f.get(k).is_some()) { Some(self.event_expectation(&f)?) } else { None };
        Ok((Action::Events(Events { namespace, name, selector, expect }), timeout))
    }

    /// `reason`, `message`, `type`, `involvedObject`, `count` / `minCount` of an `events`.
    fn event_expectation(&self, f: &Fields<'_>) -> R<EventExpectation> {
        let type_ = match f.get("type") {
            Some(t) => {
                let s = self.string(&t)?;
                if s != "Normal" && s != "Warning" {
                    return Err(self.err_at(
                        t.node,
                        &t.path,
                        format!("unknown event type {s:?}; allowed: Normal, Warning"),
                    ));
                }
                Some(s)
            }
            None => None,
        };
        let (involved_kind, involved_name, involved_namespace) = match f.get("involvedObject") {
            Some(io) => {
                let iof = self.fields(&io, "involvedObject", &["kind", "name", "namespace"], &[])?;
                (
                    self.opt_nonempty(&iof, "kind")?,
                    self.opt_nonempty(&iof, "name")?,
                    self.opt_nonempty(&iof, "namespace")?,
                )
            }
            None => (None, None, None),
        };
        let count = match (f.get("count"), f.get("minCount")) {
            (Some(_), Some(m)) => {
                return Err(self.err_at(
                    m.anchor(),
                    &m.path,
                    "count (exactly) and minCount (at least) are exclusive; give one",
                ));
            }
            (Some(c), None) => CountRule::Exactly(self.unsigned(&c, 0, u64::from(u32::MAX))? as u32),
            (None, Some(m)) => CountRule::AtLeast(self.unsigned(&m, 1, u64::from(u32::MAX))? as u32),
            (None, None) => CountRule::AtLeast(1),
        };
        Ok(EventExpectation {
            reason: self.opt_nonempty(f, "reason")?,
            message: self.opt_string(f, "message")?,
            type_,
            involved_kind,
            involved_name,
            involved_namespace,
            count,
        })
    }

    pub(super) fn pod_logs(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(
            item,
            "podLogs",
            &["namespace", "name", "selector", "container", "tail", "timeout"],
            chainsaw::COLLECTOR_FOREIGN,
        )?;
        let (name, selector) = self.name_or_selector(&f)?;
        let tail = f.get("tail").map(|t| self.integer(&t)).transpose()?;
        Ok((
            Action::PodLogs(PodLogs {
                namespace: self.opt_nonempty(&f, "namespace")?,
                name,
                selector,
                container: self.opt_nonempty(&f, "container")?,
                tail,
            }),
            self.opt_duration(&f, "timeout", true)?,
        ))
    }
}
