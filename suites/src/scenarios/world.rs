//! The world a scenario runs in: built like `nodekit up`'s (control plane over HTTPS with the
//! scenario's compressed timings and authorization mode — the Node authorizer, RBAC and
//! NodeRestriction unless the scenario says `AlwaysAllow` — then every node's runtime, agent and proxy), with each node's
//! components kept apart so faults can stop, kill and start them again.

use std::path::PathBuf;

use anyhow::Context;
use harness::backend::{AgentOptions, ControlPlane, NodeAgent, NodeProxy, ProxyMode, Runtime, RuntimeKind};
use harness::world::{Plan, World};

use super::Prepared;

/// One node's parts; a part is `None` while a fault keeps it down.
pub struct NodeParts {
    pub name: String,
    pub runtime: Option<Runtime>,
    pub agent: Option<NodeAgent>,
    pub proxy: Option<NodeProxy>,
    agent_options: AgentOptions,
}

/// The built world.
pub struct ScenarioWorld {
    pub world: World,
    pub cp: ControlPlane,
    pub nodes: tokio::sync::Mutex<Vec<NodeParts>>,
    pub node_names: Vec<String>,
    pub kind: RuntimeKind,
    mode: ProxyMode,
    proxy_args: Vec<String>,
    /// The admin kubeconfig (the API server's world address), for kubectl and scripts.
    pub kubeconfig: PathBuf,
}

impl ScenarioWorld {
    /// Builds the world of `p` (named `name` in its timeline) with its artifacts (logs,
    /// audit, kubelet configs) in `out`.
    pub async fn build(p: &Prepared, name: &str, out: &std::path::Path) -> anyhow::Result<ScenarioWorld> {
        let names: Vec<String> = p.scenario.world.nodes.iter().map(|n| n.name.clone()).collect();
        let plan = Plan::named_nodes(&names)?.named(name);
        let world = World::build_with(&plan, harness::artifacts::Artifacts::at(out)).await?;
        let mut config = ControlPlane::compressed_config(p.scenario.world.node_monitor_grace_period);
        config.authorization = p.scenario.world.authorization_mode == scenario::model::AuthorizationMode::NodeRbac;
        let cp = ControlPlane::start_secure(&world, config).await?;
        let kind = match p.runtime {
            scenario::model::RuntimeName::FakeCri => RuntimeKind::FakeCri,
            scenario::model::RuntimeName::Containerd => RuntimeKind::Containerd,
        };
        let mode = match p.scenario.world.proxy_mode {
            scenario::model::ProxyMode::Nftables => ProxyMode::Nftables,
            scenario::model::ProxyMode::Iptables => ProxyMode::Iptables,
        };
        let proxy_config = out.join("kube-proxy-config.yaml");
        std::fs::write(&proxy_config, &p.proxy_config)?;
        let proxy_args = vec!["--config".to_string(), proxy_config.to_string_lossy().into_owned()];
        let kubeconfig = cp.kubeconfig().to_path_buf();
        let profile = match &p.node_agent {
            Some(a) => Some(std::sync::Arc::new(runtime_profile::load_agent_str(&a.text, &a.source)?)),
            None => None,
        };
        let mut nodes = Vec::new();
        for (name, config) in names.iter().zip(&p.agent_configs) {
            let agent_options = AgentOptions { config_yaml: config.clone(), extra_args: Vec::new(), profile: profile.clone() };
            let runtime = Runtime::start_with_images(&world, name, kind.clone(), &p.images)
                .await
                .with_context(|| format!("starting the runtime of {name}"))?;
            let agent = NodeAgent::start(&world, &cp, name, &runtime, &agent_options).await?;
            let proxy = NodeProxy::start(&world, &cp, name, mode, &proxy_args).await?;
            nodes.push(NodeParts { name: name.clone(), runtime: Some(runtime), agent: Some(agent), proxy: Some(proxy), agent_options });
        }
        Ok(ScenarioWorld { world, cp, nodes: tokio::sync::Mutex::new(nodes), node_names: names, kind, mode, proxy_args, kubeconfig })
    }

    /// Starts whatever of `node` is down again (runtime first, then agent and proxy).
    pub async fn start_missing(&self, node: &str) -> anyhow::Result<()> {
        let mut nodes = self.nodes.lock().await;
        let part = nodes.iter_mut().find(|n| n.name == node).with_context(|| format!("no node {node}"))?;
        if part.runtime.is_none() {
            part.runtime = Some(Runtime::start(&self.world, node, self.kind.clone()).await?);
        }
        if part.agent.is_none() {
            let runtime = part.runtime.as_ref().context("the runtime is down")?;
            part.agent = Some(NodeAgent::start(&self.world, &self.cp, node, runtime, &part.agent_options).await?);
        }
        if part.proxy.is_none() {
            part.proxy = Some(NodeProxy::start(&self.world, &self.cp, node, self.mode, &self.proxy_args).await?);
        }
        Ok(())
    }

    /// Stops every node's parts, then the control plane.
    pub async fn shutdown(self) {
        let nodes = self.nodes.into_inner();
        for n in nodes {
            if let Some(p) = n.proxy {
                let _ = p.stop().await;
            }
            if let Some(a) = n.agent {
                let _ = a.stop().await;
            }
            if let Some(r) = n.runtime {
                let _ = r.stop().await;
            }
        }
        self.cp.shutdown().await;
    }
}
