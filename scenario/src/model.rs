//! A scenario after loading: every file read, every duration parsed, every timeout resolved
//! (operation → step → scenario → Chainsaw's defaults), every field checked. The runner takes
//! this and nothing else; the YAML shapes that produce it live in [`crate::load`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One scenario, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// `metadata.name`.
    pub name: String,
    /// The file it came from (as given on the command line).
    pub file: PathBuf,
    /// `spec.description`.
    pub description: Option<String>,
    /// `spec.reproduces`: upstream issues or behaviours this scenario reproduces.
    pub reproduces: Vec<String>,
    /// Where it came from: a nodekit Scenario or a Chainsaw Test run in a default world.
    pub origin: Origin,
    pub world: WorldSpec,
    /// The scenario-level timeouts (already over Chainsaw's defaults).
    pub timeouts: Timeouts,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    Scenario,
    ChainsawTest,
}

/// `spec.world`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldSpec {
    /// The worker nodes in order (node-a, node-b, … unless named).
    pub nodes: Vec<NodeSpec>,
    /// `runtime`: none = whatever the command line says (`--runtime`, default fake-cri).
    pub runtime: Option<RuntimeName>,
    pub proxy_mode: ProxyMode,
    /// KubeletConfiguration fields merged over the world's defaults for every node.
    pub kubelet_config: Value,
    /// KubeProxyConfiguration fields merged over the world's defaults.
    pub proxy_config: Value,
    /// `timing.nodeMonitorGracePeriod`: the control plane's node grace period; the other
    /// grace-tied timings scale with it (upstream: 50 s).
    pub node_monitor_grace_period: Duration,
    /// `authorizationMode`: how the API server authorizes requests (default `Node,RBAC`).
    pub authorization_mode: AuthorizationMode,
}

/// kube-apiserver's `--authorization-mode` choices a world offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizationMode {
    /// The Node authorizer, then RBAC, with NodeRestriction admission: what clusters run.
    #[default]
    NodeRbac,
    /// Every authenticated request is allowed (for worlds that need a bare server).
    AlwaysAllow,
}

impl AuthorizationMode {
    /// The spellings, as upstream's flag takes them.
    pub const ALLOWED: &'static str = "Node,RBAC or AlwaysAllow";

    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationMode::NodeRbac => "Node,RBAC",
            AuthorizationMode::AlwaysAllow => "AlwaysAllow",
        }
    }

    /// Parses upstream's spelling (`Node,RBAC`, `RBAC,Node` or `AlwaysAllow`).
    pub fn parse(s: &str) -> Option<AuthorizationMode> {
        match s {
            "Node,RBAC" | "RBAC,Node" => Some(AuthorizationMode::NodeRbac),
            "AlwaysAllow" => Some(AuthorizationMode::AlwaysAllow),
            _ => None,
        }
    }
}

/// One worker node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    /// KubeletConfiguration fields for this node only (merged after the world's).
    pub kubelet_config: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuntimeName {
    FakeCri,
    Containerd,
}

impl RuntimeName {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeName::FakeCri => "fake-cri",
            RuntimeName::Containerd => "containerd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProxyMode {
    Nftables,
    Iptables,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Nftables => "nftables",
            ProxyMode::Iptables => "iptables",
        }
    }
}

/// Chainsaw's timeouts. Defaults: apply 5 s, assert 30 s, cleanup 30 s, delete 15 s, error
/// 30 s, exec 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub apply: Duration,
    pub assert: Duration,
    pub cleanup: Duration,
    pub delete: Duration,
    pub error: Duration,
    pub exec: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            apply: Duration::from_secs(5),
            assert: Duration::from_secs(30),
            cleanup: Duration::from_secs(30),
            delete: Duration::from_secs(15),
            error: Duration::from_secs(30),
            exec: Duration::from_secs(5),
        }
    }
}

/// One step: `try` in order; on the first failure (without `continueOnError`) the rest of
/// `try` is skipped and `catch` runs; `finally` always runs; `cleanup` runs at the end of the
/// scenario, last step first, together with the deletion of what the step created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub description: Option<String>,
    pub timeouts: Timeouts,
    pub try_: Vec<Operation>,
    pub catch: Vec<Operation>,
    pub finally: Vec<Operation>,
    pub cleanup: Vec<Operation>,
}

/// One operation: exactly one action plus the shared fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub description: Option<String>,
    pub continue_on_error: bool,
    /// The operation's own `timeout`, if it set one (otherwise the step's for its kind).
    pub timeout: Option<Duration>,
    /// 1-based line of the operation in its file (for messages).
    pub line: usize,
    pub action: Action,
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Create or update (server-side: create, else merge the given fields over the live object).
    Apply(Resources),
    /// Create; fails if the object exists.
    Create(Resources),
    /// Merge patch of the given fields into existing objects.
    Patch(Resources),
    /// Replace existing objects.
    Update(Resources),
    Delete(Delete),
    /// Eventually (within the timeout) a live object contains each expected partial object;
    /// with `hold_for`, the match must then hold without a break for that long.
    Assert(Check),
    /// Eventually no live object matches any of the given partial objects.
    Error(Check),
    Wait(Wait),
    Sleep(Duration),
    Script(Script),
    Command(Command),
    /// Collect events (as Chainsaw's collector) or, with expectations, wait for them.
    Events(Events),
    PodLogs(PodLogs),
    Describe(ObjectQuery),
    Get(ObjectQuery),
    Fault(Fault),
    /// Heal faults started earlier: the named one, or all that are still active.
    Heal(Heal),
    /// Open connections from a host of the world and judge them from the packets captured
    /// while they ran.
    Traffic(Traffic),
    /// Capture packets on the given hosts until the end of the step; the pcaps are artifacts.
    Capture(CaptureSpec),
}

impl Action {
    /// The YAML key of the action.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Apply(_) => "apply",
            Action::Create(_) => "create",
            Action::Patch(_) => "patch",
            Action::Update(_) => "update",
            Action::Delete(_) => "delete",
            Action::Assert(_) => "assert",
            Action::Error(_) => "error",
            Action::Wait(_) => "wait",
            Action::Sleep(_) => "sleep",
            Action::Script(_) => "script",
            Action::Command(_) => "command",
            Action::Events(_) => "events",
            Action::PodLogs(_) => "podLogs",
            Action::Describe(_) => "describe",
            Action::Get(_) => "get",
            Action::Fault(_) => "fault",
            Action::Heal(_) => "heal",
            Action::Traffic(_) => "traffic",
            Action::Capture(_) => "capture",
        }
    }
}

/// Objects from `file` (every document of it, relative to the scenario's directory) or the
/// inline `resource`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub objects: Vec<Value>,
    /// Where the objects came from: "file.yaml" or "inline".
    pub source: String,
}

/// `delete`: the objects of a file/resource, or a `ref`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Delete {
    Objects(Resources),
    Ref(ObjectRef),
}

/// `apiVersion` + `kind` and a name, or labels (or neither: every object of that kind in the
/// namespace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// `assert` / `error`: expected partial objects (each with apiVersion and kind; with
/// metadata.name / namespace / labels when given, only those objects are compared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub expected: Vec<Value>,
    pub source: String,
    /// nodekit: once matched, the match must hold this long.
    pub hold_for: Option<Duration>,
}

/// `wait`, as Chainsaw's (which runs `kubectl wait`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    pub target: ObjectQuery,
    pub for_: WaitFor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WaitFor {
    Creation,
    Deletion,
    /// `condition: {name: Ready, value: "true"}` (value default "true", compared case-insensitively).
    Condition { name: String, value: String },
    /// `jsonPath: {path: '{.status.phase}', value: Running}`.
    JsonPath { path: String, value: String },
}

/// apiVersion + kind, with a name or a label selector (`app=web,tier=x`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectQuery {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub selector: Option<String>,
}

/// `script`: run with `sh -c` (or `shell` + `shellArgs`) with the world's `KUBECONFIG`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Script {
    pub content: String,
    pub shell: Option<String>,
    pub shell_args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub check: Option<Value>,
}

/// `command`: an entrypoint and args, no shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub entrypoint: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub check: Option<Value>,
}

/// `events`: Chainsaw's collector (namespace, name, selector); with `reason`, `message`,
/// `involvedObject`, `count` or `minCount` it is an expectation that must come true within the
/// timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Events {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub selector: Option<String>,
    pub expect: Option<EventExpectation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventExpectation {
    pub reason: Option<String>,
    /// A pattern where `*` matches any run of characters and `?` one character.
    pub message: Option<String>,
    pub type_: Option<String>,
    pub involved_kind: Option<String>,
    pub involved_name: Option<String>,
    pub involved_namespace: Option<String>,
    pub count: CountRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CountRule {
    /// At least this many (summing `count` of matching Events).
    AtLeast(u32),
    /// Exactly this many.
    Exactly(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodLogs {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub selector: Option<String>,
    pub container: Option<String>,
    pub tail: Option<i64>,
}

/// `fault`: starts at once and stays active while the operations after it run, until its
/// `duration` ends, a `heal` names it, or the scenario ends (whatever happened).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// For `heal: {fault: NAME}` and the report (default: a description of the fault).
    pub name: Option<String>,
    pub duration: Option<Duration>,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Drop the node's traffic with the API server (both ways, or one way).
    Partition { node: String, direction: Direction },
    /// Stop a component gracefully (SIGTERM); healing starts it again.
    Stop { node: String, component: Component },
    /// SIGKILL a component; healing starts it again. `node` kills the whole node: every
    /// component SIGKILLed and the host off the network; healing brings the network back only.
    Kill { node: String, component: Component },
    /// Stop a component and start it again at once (nothing to heal).
    Restart { node: String, component: Component },
    /// The API server answers matching requests with an error and/or after a delay, for
    /// `times` requests or until healed.
    ApiServer(ApiServerFault),
    /// The API server ends every open watch once (clients must re-list and re-watch).
    DropWatches,
    /// fake-cri faults on a node (refused for other runtimes).
    Runtime { node: String, faults: RuntimeFaults },
    /// netem between two hosts of the world (both directions): delay, loss, or the link down.
    Link(LinkFault),
    /// Resource pressure on a node: a critical pod (priority of system-node-critical, which
    /// the eviction manager never evicts) pinned to the node uses memory, disk or PIDs; the
    /// node's eviction signals (capacity minus what pods use) see it like any other usage.
    /// Healing deletes that pod.
    Pressure { node: String, resource: PressureResource },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PressureResource {
    /// MiB of memory held.
    Memory { mib: u64 },
    /// MiB written to the pod's writable layer.
    Disk { mib: u64 },
    /// Processes held.
    Pids { count: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Both,
    /// Only the node's requests to the API server are dropped.
    ToApiServer,
    /// Only the API server's answers to the node are dropped.
    FromApiServer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Component {
    Agent,
    Proxy,
    Runtime,
    Node,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Agent => "agent",
            Component::Proxy => "proxy",
            Component::Runtime => "runtime",
            Component::Node => "node",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiServerFault {
    /// get, list, watch, create, update, patch, delete (none = every verb).
    pub verb: Option<String>,
    /// `pods`, `pods/status`, `nodes/status`, `leases`… (none = every resource).
    pub resource: Option<String>,
    /// HTTP status to answer with (a Status body with upstream's reason for the code).
    pub code: Option<u16>,
    pub message: Option<String>,
    pub latency: Option<Duration>,
    /// Only this many matching requests.
    pub times: Option<u64>,
}

/// fake-cri's fault knobs (keys are image references, container names or pod names as fake-cri
/// documents them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuntimeFaults {
    pub pull_error: BTreeMap<String, String>,
    pub create_error: BTreeMap<String, String>,
    pub sandbox_error: BTreeMap<String, String>,
    pub crash_after: BTreeMap<String, Duration>,
    pub not_ready: Option<String>,
    pub latency: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkFault {
    /// Host names: nodes, or `cp` (the control-plane host).
    pub between: (String, String),
    pub delay: Option<Duration>,
    /// Packet loss in percent.
    pub loss: Option<f64>,
    /// Take the first host's link down entirely.
    pub down: bool,
}

/// `heal`: a named fault, or every active one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heal {
    pub fault: Option<String>,
}

/// `traffic`: `connections` TCP connections one after the other from host `from` (default
/// `client`; or `cp`, or a node) to `to`, each captured on the way; the expectations are
/// judged from the packets: a connection succeeded when the SYN-ACK came back to `from`, it was
/// refused when a RST or an ICMP unreachable came back, and the endpoint that served it is the
/// pod address its SYN was DNATed to on a node's pod bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    pub from: String,
    pub to: TrafficTarget,
    pub connections: u32,
    pub expect: TrafficExpect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrafficTarget {
    /// A Service's ClusterIP and port (`port` is the Service port).
    Service { namespace: String, name: String, port: u16 },
    /// A node's address and a NodePort.
    NodePort { node: String, port: u16 },
    /// A pod's address and a container port.
    Pod { namespace: String, name: String, port: u16 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficExpect {
    /// At least this share of connections answered with a SYN-ACK, in percent (0–100).
    pub success_rate: Option<f64>,
    /// At least this many distinct endpoints served a connection.
    pub min_endpoints: Option<u32>,
    /// At most this many distinct endpoints served a connection (e.g. 1: only the one ready
    /// pod gets traffic).
    pub max_endpoints: Option<u32>,
    /// Every connection was refused (RST or ICMP unreachable) rather than timing out.
    pub refused: bool,
}

/// `capture`: hosts to capture on (every interface that matters: eth0, and cbr0 on nodes);
/// empty means every node and the client.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CaptureSpec {
    pub hosts: Vec<String>,
}

/// The kind of timeout an action uses by default.
pub fn default_timeout(action: &Action, t: &Timeouts) -> Duration {
    match action {
        Action::Apply(_) | Action::Create(_) | Action::Patch(_) | Action::Update(_) => t.apply,
        Action::Delete(_) => t.delete,
        Action::Assert(_) | Action::Wait(_) | Action::Events(_) => t.assert,
        Action::Error(_) => t.error,
        Action::Script(_) | Action::Command(_) | Action::PodLogs(_) | Action::Describe(_) | Action::Get(_) => t.exec,
        Action::Sleep(d) => *d,
        Action::Fault(_) | Action::Heal(_) | Action::Capture(_) => t.apply,
        Action::Traffic(_) => t.assert,
    }
}
