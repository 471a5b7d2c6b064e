//! `spec.world` and the hosts of the world: nodes, `cp` (the control-plane host) and `client`.

use serde_json::{Map as JsonMap, Value};

use super::fields::{Fields, Item, Loader, R};
use super::text::index;
use super::yaml::{Node, Yaml};
use crate::chainsaw;
use crate::model::{AuthorizationMode, NodeSpec, ProxyMode, RuntimeName, WorldSpec};

/// Why a world's node count is limited, for messages.
const WHY: &str = "a world has 1 to 8 worker nodes";

impl Loader {
    pub(super) fn world(&self, item: &Item<'_>) -> R<WorldSpec> {
        let f = self.fields(
            item,
            "world",
            &["nodes", "runtime", "proxyMode", "authorizationMode", "kubeletConfig", "proxyConfig", "images", "timing"],
            &[],
        )?;
        let mut world = chainsaw::default_world();
        if let Some(nodes) = f.get("nodes") {
            world.nodes = self.nodes(&nodes)?;
        }
        if let Some(rt) = f.get("runtime") {
            world.runtime = Some(self.runtime_name(&rt)?);
        }
        if let Some(pm) = f.get("proxyMode") {
            world.proxy_mode = self.proxy_mode(&pm)?;
        }
        if let Some(am) = f.get("authorizationMode") {
            let text = self.string(&am)?;
            world.authorization_mode = AuthorizationMode::parse(&text).ok_or_else(|| {
                self.err_at(am.node, &am.path, format!("unknown authorization mode {text:?}; allowed: {}", AuthorizationMode::ALLOWED))
            })?;
        }
        if let Some(kc) = f.get("kubeletConfig") {
            world.kubelet_config = self.mapping_json(&kc, "kubeletConfig (KubeletConfiguration fields)")?;
        }
        if let Some(pc) = f.get("proxyConfig") {
            world.proxy_config = self.mapping_json(&pc, "proxyConfig (KubeProxyConfiguration fields)")?;
        }
        if let Some(images) = f.get("images") {
            let list = self.list(&images, "images")?;
            if !list.is_empty() {
                return Err(self.err_at(
                    images.anchor(),
                    &images.path,
                    "serving image archives is not available yet; use the built-in images (nodekit.local/workload:1.0, registry.k8s.io/e2e-test-images/agnhost:2.53, registry.k8s.io/pause:3.10)",
                ));
            }
        }
        if let Some(timing) = f.get("timing") {
            let t = self.fields(&timing, "timing", &["nodeMonitorGracePeriod"], &[])?;
            if let Some(g) = self.opt_duration(&t, "nodeMonitorGracePeriod", true)? {
                world.node_monitor_grace_period = g;
            }
        }
        Ok(world)
    }

    fn runtime_name(&self, item: &Item<'_>) -> R<RuntimeName> {
        match self.string(item)?.as_str() {
            "fake-cri" => Ok(RuntimeName::FakeCri),
            "containerd" => Ok(RuntimeName::Containerd),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("unknown runtime {other:?}; allowed: fake-cri, containerd"),
            )),
        }
    }

    fn proxy_mode(&self, item: &Item<'_>) -> R<ProxyMode> {
        match self.string(item)?.as_str() {
            "nftables" => Ok(ProxyMode::Nftables),
            "iptables" => Ok(ProxyMode::Iptables),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("unknown proxy mode {other:?}; allowed: nftables, iptables"),
            )),
        }
    }

    /// `nodes`: a count (node-a, node-b, …) or a list of names or `{name, kubeletConfig}`.
    fn nodes(&self, item: &Item<'_>) -> R<Vec<NodeSpec>> {
        match &item.node.v {
            Yaml::Int(_) | Yaml::UInt(_) => {
                let n = match item.node.v {
                    Yaml::UInt(n) if (1..=8).contains(&n) => n,
                    _ => {
                        let shown = item.node.v.scalar_text().unwrap_or_default();
                        return Err(self.err_at(
                            item.node,
                            &item.path,
                            format!("{shown} nodes: {WHY} (a count from 1 to 8, or a list of names)"),
                        ));
                    }
                };
                Ok((0..n)
                    .map(|i| NodeSpec {
                        name: chainsaw::node_name(i as usize),
                        kubelet_config: Value::Object(JsonMap::new()),
                    })
                    .collect())
            }
            Yaml::Seq(list) => self.node_list(item, list),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("nodes is a count from 1 to 8 or a list of names, found {}", other.type_name()),
            )),
        }
    }

    fn node_list(&self, item: &Item<'_>, list: &[Node]) -> R<Vec<NodeSpec>> {
        if list.is_empty() || list.len() > 8 {
            return Err(self.err_at(item.node, &item.path, format!("{} nodes: {WHY}", list.len())));
        }
        let mut out: Vec<NodeSpec> = Vec::with_capacity(list.len());
        for (i, node) in list.iter().enumerate() {
            let el = Item { key: None, node, path: index(&item.path, i) };
            let (name_item, kubelet_config) = self.list_node(&el)?;
            let name = self.dns_label(&name_item, "node name")?;
            if name == "cp" {
                return Err(self.err_at(
                    name_item.node,
                    &name_item.path,
                    "\"cp\" names the control-plane host; choose another node name",
                ));
            }
            if name == "client" {
                return Err(self.err_at(
                    name_item.node,
                    &name_item.path,
                    "\"client\" names the client host (where traffic starts by default); choose another node name",
                ));
            }
            if out.iter().any(|n| n.name == name) {
                return Err(self.err_at(name_item.node, &name_item.path, format!("node {name:?} is listed twice")));
            }
            out.push(NodeSpec { name, kubelet_config });
        }
        Ok(out)
    }

    /// One node of the list: where its name is, and its kubeletConfig.
    fn list_node<'n>(&self, el: &Item<'n>) -> R<(Item<'n>, Value)> {
        match &el.node.v {
            Yaml::Str(_) => Ok((el.clone(), Value::Object(JsonMap::new()))),
            Yaml::Map(_) => {
                let f = self.fields(el, "a node", &["name", "kubeletConfig"], &[])?;
                let name = self.required(&f, "name", "each node has a name")?;
                let kc = match f.get("kubeletConfig") {
                    Some(kc) => self.mapping_json(&kc, "kubeletConfig (KubeletConfiguration fields)")?,
                    None => Value::Object(JsonMap::new()),
                };
                Ok((name, kc))
            }
            other => Err(self.err_at(
                el.node,
                &el.path,
                format!("a node is a name or {{name, kubeletConfig}}, found {}", other.type_name()),
            )),
        }
    }

    pub(super) fn node_names(&self) -> Vec<String> {
        self.world.as_ref().map(|w| w.nodes.iter().map(|n| n.name.clone()).collect()).unwrap_or_default()
    }

    pub(super) fn world_node(&self, f: &Fields<'_>) -> R<String> {
        let item = self.required(f, "node", "the node, one of spec.world.nodes")?;
        let name = self.string(&item)?;
        let names = self.node_names();
        if !names.contains(&name) {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!("node {name:?} is not in spec.world.nodes ({})", names.join(", ")),
            ));
        }
        Ok(name)
    }

    /// A host of the world: `cp` (the control-plane host), a node of spec.world.nodes, or with
    /// `client` the client host too.
    pub(super) fn host(&self, item: &Item<'_>, client: bool) -> R<String> {
        let s = self.string(item)?;
        let names = self.node_names();
        if s == "cp" || (client && s == "client") || names.contains(&s) {
            return Ok(s);
        }
        let which = if client { "neither client, cp nor" } else { "neither cp nor" };
        Err(self.err_at(
            item.node,
            &item.path,
            format!("host {s:?} is {which} a node of spec.world.nodes ({})", names.join(", ")),
        ))
    }
}
