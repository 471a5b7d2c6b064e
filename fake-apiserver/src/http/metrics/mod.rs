//! The resource metrics API `metrics.k8s.io/v1beta1` (NodeMetrics, PodMetrics), served as
//! metrics-server would be behind the API server, so that `kubectl top node|pod` work.
//!
//! - [`scraper`]: every [`Config::metric_resolution`](crate::Config::metric_resolution) each
//!   node's kubelet `/metrics/resource` is scraped ([`prom`] parses and decodes it);
//! - [`storage`]: the last two points per node and container, and the usage between them;
//! - [`api`] and [`format`]: the objects, their JSON and the request handling.
//!
//! Off unless [`Config::metrics_server`](crate::Config::metrics_server) is set: then the group
//! is in discovery and the scrape loop runs (it dials every node's kubelet address, which in
//! many tests is made up). Off, `/apis/metrics.k8s.io/...` is 404 and `kubectl top` says
//! "Metrics API not available", as in a cluster without metrics-server.

pub mod api;
pub mod format;
pub mod prom;
pub mod scraper;
pub mod storage;

use std::collections::HashMap;

use http::{Method, Response};

use super::{Body, value_response};
use crate::error::{ApiError, ApiResult};
use crate::server::State;

pub use api::MetricsRoute;
pub use storage::Storage;

/// The verb of a request to a metrics path (upstream's verbs for a resource with `get` and
/// `list` only).
pub fn verb(method: &Method, r: &MetricsRoute, watch: bool) -> &'static str {
    super::resource_verb(method, r.name().is_some(), watch)
}

/// Serves a request to `/apis/metrics.k8s.io/v1beta1/...`; `table_include` is the request's
/// `includeObject` when it asks for a Table.
pub fn handle(state: &State, r: &MetricsRoute, verb: &str, q: &HashMap<String, String>, table_include: Option<&str>) -> ApiResult<Response<Body>> {
    if !state.config.metrics_server {
        return Err(ApiError::not_found_path());
    }
    match verb {
        "get" | "list" => Ok(value_response(200, &api::serve(state, r, q, table_include)?)),
        "watch" => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("watch is not supported on resources of kind {:?}", format!("{}.{}", r.resource(), api::GROUP)),
        )),
        other => Err(ApiError::method_not_allowed(other)),
    }
}
