//! Documents: the kind, `metadata`, a Scenario's or a Test's `spec`, timeouts and steps.

use super::KINDS_ALLOWED;
use super::fields::{Fields, Item, Loader, R};
use super::ops::Block;
use super::yaml::{Node, Yaml};
use crate::chainsaw;
use crate::model::{Operation, Origin, Scenario, Step, Timeouts};

/// What kind of document is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Scenario,
    Test,
}

impl Loader {
    pub(super) fn document(&mut self, doc: &Node) -> R<Scenario> {
        self.world = None;
        self.faults.clear();
        self.fault_count = 0;
        self.namespace = None;
        let root = Item::root(doc);
        if !matches!(doc.v, Yaml::Map(_)) {
            return Err(self.err_at(
                doc,
                "",
                format!("a scenario is a mapping with apiVersion, kind, metadata and spec; {KINDS_ALLOWED}"),
            ));
        }
        let top = self.fields(&root, "a scenario", &["apiVersion", "kind", "metadata", "spec"], &[])?;
        self.dialect = self.kind(&top)?;
        let metadata = self.required(&top, "metadata", "metadata.name names the scenario")?;
        let meta = self.fields(&metadata, "metadata", &["name", "labels", "annotations", "creationTimestamp"], &[])?;
        let name_item = self.required(&meta, "name", "the scenario's name")?;
        let name = self.dns_label(&name_item, "name")?;
        if let Some(labels) = meta.get("labels") {
            self.string_map(&labels)?;
        }
        if let Some(annotations) = meta.get("annotations") {
            self.string_map(&annotations)?;
        }
        if let Some(ts) = meta.get("creationTimestamp") {
            return Err(self.err_at(ts.node, &ts.path, "must be null or left out"));
        }
        let spec_item = self.required(&top, "spec", "spec.steps holds what the scenario does")?;
        match self.dialect {
            Dialect::Scenario => self.scenario_spec(&spec_item, name),
            Dialect::Test => self.test_spec(&spec_item, name, &name_item),
        }
    }

    pub(super) fn kind(&self, top: &Fields<'_>) -> R<Dialect> {
        let api = top.has("apiVersion");
        let kind = top.has("kind");
        let Some(api) = api else {
            return Err(self.err_at(top.item.node, "apiVersion", format!("required; {KINDS_ALLOWED}")));
        };
        let Some(kind) = kind else {
            return Err(self.err_at(top.item.node, "kind", format!("required; {KINDS_ALLOWED}")));
        };
        let api_s = self.string(&api)?;
        let kind_s = self.string(&kind)?;
        match (api_s.as_str(), kind_s.as_str()) {
            ("nodekit.dev/v1alpha1", "Scenario") => Ok(Dialect::Scenario),
            ("chainsaw.kyverno.io/v1alpha1", "Test") => Ok(Dialect::Test),
            ("chainsaw.kyverno.io/v1alpha2", "Test") => Err(self.err_at(
                api.node,
                &api.path,
                "Chainsaw's v1alpha2 has no Test kind (it defines only Configuration); write the test as chainsaw.kyverno.io/v1alpha1",
            )),
            (_, "Scenario") => Err(self.err_at(
                api.node,
                &api.path,
                format!("unknown apiVersion {api_s:?} for kind Scenario; allowed: nodekit.dev/v1alpha1"),
            )),
            (a, "Test") if a.starts_with("chainsaw.kyverno.io/") => Err(self.err_at(
                api.node,
                &api.path,
                format!("unknown apiVersion {api_s:?} for kind Test; allowed: chainsaw.kyverno.io/v1alpha1"),
            )),
            ("chainsaw.kyverno.io/v1alpha1", "StepTemplate") => Err(self.err_at(
                kind.node,
                &kind.path,
                "not supported by nodekit (Chainsaw step templates); write the steps into the test",
            )),
            (a, "Configuration") if a.starts_with("chainsaw.kyverno.io/") => Err(self.err_at(
                kind.node,
                &kind.path,
                format!("a Chainsaw Configuration is not a test (nodekit takes its settings from the command line); {KINDS_ALLOWED}"),
            )),
            _ => Err(self.err_at(
                kind.node,
                &kind.path,
                format!("kind {kind_s} (apiVersion {api_s}) is not a scenario; {KINDS_ALLOWED}"),
            )),
        }
    }

    pub(super) fn scenario_spec(&mut self, spec_item: &Item<'_>, name: String) -> R<Scenario> {
        let spec = self.fields(
            spec_item,
            "spec",
            &["description", "reproduces", "world", "timeouts", "steps"],
            chainsaw::TEST_SPEC_FOREIGN,
        )?;
        let description = self.opt_string(&spec, "description")?;
        let reproduces = match spec.get("reproduces") {
            Some(i) => self.list(&i, "strings")?.iter().map(|i| self.nonempty_string(i)).collect::<R<Vec<_>>>()?,
            None => Vec::new(),
        };
        let world = match spec.get("world") {
            Some(w) => self.world(&w)?,
            None => chainsaw::default_world(),
        };
        self.world = Some(world.clone());
        let timeouts = match spec.get("timeouts") {
            Some(t) => self.timeouts(&t, Timeouts::default())?,
            None => Timeouts::default(),
        };
        let steps_item = self.required(&spec, "steps", "a scenario has at least one step")?;
        let steps = self.steps(&steps_item, &timeouts, &[])?;
        Ok(Scenario {
            name,
            file: self.file.clone(),
            description,
            reproduces,
            origin: Origin::Scenario,
            world,
            timeouts,
            steps,
        })
    }

    pub(super) fn test_spec(&mut self, spec_item: &Item<'_>, name: String, name_item: &Item<'_>) -> R<Scenario> {
        self.refuse_keys(spec_item, &["world", "reproduces"], chainsaw::nodekit_addition)?;
        let spec = self.fields(
            spec_item,
            "spec",
            &["description", "timeouts", "steps", "namespace", "catch", "concurrent", "failFast", "skip", "skipDelete"],
            chainsaw::TEST_SPEC_FOREIGN,
        )?;
        for ignored in ["concurrent", "failFast"] {
            self.opt_bool(&spec, ignored)?;
        }
        for harmless_when_false in ["skip", "skipDelete"] {
            if let Some(i) = spec.get(harmless_when_false)
                && self.boolean(&i)?
            {
                return Err(self.err_at(i.anchor(), &i.path, chainsaw::refused_true(harmless_when_false)));
            }
        }
        let description = self.opt_string(&spec, "description")?;
        let world = chainsaw::default_world();
        self.world = Some(world.clone());
        let timeouts = match spec.get("timeouts") {
            Some(t) => self.timeouts(&t, Timeouts::default())?,
            None => Timeouts::default(),
        };
        let namespace = match spec.get("namespace") {
            Some(ns) => {
                let s = self.dns_label(&ns, "namespace")?;
                Some((s, ns.node.line))
            }
            None => None,
        };
        self.namespace =
            Some(namespace.as_ref().map(|(n, _)| n.clone()).unwrap_or_else(|| chainsaw::namespace_for(&name)));
        let test_catch = match spec.get("catch") {
            Some(c) => self.operations(&c, Block::TestCatch)?,
            None => Vec::new(),
        };
        let steps_item = self.required(&spec, "steps", "a test has at least one step")?;
        let steps = self.steps(&steps_item, &timeouts, &test_catch)?;
        let mut scenario = Scenario {
            name,
            file: self.file.clone(),
            description,
            reproduces: Vec::new(),
            origin: Origin::ChainsawTest,
            world,
            timeouts,
            steps,
        };
        chainsaw::set_namespace(&mut scenario, namespace, name_item.node.line);
        Ok(scenario)
    }

    pub(super) fn timeouts(&self, item: &Item<'_>, base: Timeouts) -> R<Timeouts> {
        let f = self.fields(item, "timeouts", &["apply", "assert", "cleanup", "delete", "error", "exec"], &[])?;
        let mut t = base;
        for (name, slot) in [
            ("apply", &mut t.apply),
            ("assert", &mut t.assert),
            ("cleanup", &mut t.cleanup),
            ("delete", &mut t.delete),
            ("error", &mut t.error),
            ("exec", &mut t.exec),
        ] {
            if let Some(d) = self.opt_duration(&f, name, true)? {
                *slot = d;
            }
        }
        Ok(t)
    }

    pub(super) fn steps(&mut self, item: &Item<'_>, timeouts: &Timeouts, test_catch: &[Operation]) -> R<Vec<Step>> {
        let list = self.list(item, "steps")?;
        if list.is_empty() {
            return Err(self.err_at(item.anchor(), &item.path, "required: at least one step"));
        }
        let mut steps = Vec::with_capacity(list.len());
        for (i, el) in list.iter().enumerate() {
            steps.push(self.step(el, i, timeouts, test_catch)?);
        }
        Ok(steps)
    }

    pub(super) fn step(&mut self, item: &Item<'_>, i: usize, timeouts: &Timeouts, test_catch: &[Operation]) -> R<Step> {
        let f = self.fields(
            item,
            "a step",
            &["name", "description", "timeouts", "try", "catch", "finally", "cleanup"],
            chainsaw::STEP_FOREIGN,
        )?;
        let name = match f.get("name") {
            Some(n) => self.nonempty_string(&n)?,
            None => format!("step-{}", i + 1),
        };
        let description = self.opt_string(&f, "description")?;
        let timeouts = match f.get("timeouts") {
            Some(t) => self.timeouts(&t, *timeouts)?,
            None => *timeouts,
        };
        let mut blocks: [Vec<Operation>; 4] = Default::default();
        for (slot, (key, block)) in blocks.iter_mut().zip([
            ("try", Block::Try),
            ("catch", Block::Catch),
            ("finally", Block::Finally),
            ("cleanup", Block::Cleanup),
        ]) {
            if let Some(ops) = f.get(key) {
                *slot = self.operations(&ops, block)?;
            }
        }
        let [try_, mut catch, finally, cleanup] = blocks;
        if try_.is_empty() && catch.is_empty() && finally.is_empty() && cleanup.is_empty() {
            return Err(self.err_at(
                item.node,
                &f.path("try"),
                "required: a step has operations in try (or catch, finally, cleanup)",
            ));
        }
        if !test_catch.is_empty() {
            // Chainsaw runs the test's catch before the step's.
            let mut all = test_catch.to_vec();
            all.append(&mut catch);
            catch = all;
        }
        Ok(Step { name, description, timeouts, try_, catch, finally, cleanup })
    }
}
