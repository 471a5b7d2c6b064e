//! Runtime profiles: a YAML file (`apiVersion: nodekit.dev/v1alpha1`, `kind: RuntimeProfile`)
//! that tells the harness how to start a CRI runtime inside a node host, sealed the way the
//! built-in runtimes are: the command and config files to write (templates with
//! placeholders such as `{socket}` or `{pod_cidr}`), how to tell it is ready, how the kit's
//! images reach it, which RuntimeClass handlers it offers, and how to clean up after it.
//!
//! The parts: [`model`] the typed profile, [`load`] YAML in and a [`LoadError`] naming file,
//! field and what to fix out, [`template`] the placeholders and their rendering, [`builtin`] the
//! profiles shipped with the kit (`suites/examples/runtimes/`), [`agent`] node agent profiles
//! (`kind: NodeAgentProfile`), which start a kubelet-compatible binary as the node under test.

pub mod agent;
pub mod builtin;
pub mod duration;
pub mod load;
pub mod model;
pub mod template;

pub use agent::{AGENT_KIND, NodeAgentProfile, agent_binary, load_agent_file, load_agent_str};
pub use load::{LoadError, load_file, load_str};
pub use model::{Cleanup, FileTemplate, ImageRuntime, Images, OciRuntime, Readiness, RuntimeProfile};
pub use template::{Placeholder, RenderError, Values};
