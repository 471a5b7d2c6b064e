//! gRPC probes: grpc.health.v1.Health/Check over tonic, messages written with prost.

use std::time::Duration;

use tonic::transport::Endpoint;

use super::state::ProbeOutcome;
use crate::config::format_go_duration;

/// grpc.health.v1.HealthCheckRequest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// grpc.health.v1.HealthCheckResponse.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// The ServingStatus names.
pub fn serving_status_name(v: i32) -> &'static str {
    match v {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// Calls Health/Check on host:port for `service`, with upstream's result texts
/// (`pkg/probe/grpc/grpc.go`); the timeout is printed as Go prints a duration (`1s`, `500ms`).
pub async fn grpc_probe(host: &str, port: u16, service: &str, timeout: Duration) -> ProbeOutcome {
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let within = format_go_duration(timeout);
    let endpoint = match Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(timeout),
        Err(e) => return ProbeOutcome::Error(e.to_string()),
    };
    // One deadline for dialing and the call, as upstream's context. Upstream dials with
    // WithBlock: a refused connection is retried until the deadline, so every failure to
    // connect reads as the timeout.
    let deadline = tokio::time::Instant::now() + timeout;
    let channel = match tokio::time::timeout_at(deadline, endpoint.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return ProbeOutcome::Failure(format!("timeout: failed to connect service \"{addr}\" within {within}: {e}"));
        }
        Err(_) => {
            return ProbeOutcome::Failure(format!(
                "timeout: failed to connect service \"{addr}\" within {within}: context deadline exceeded"
            ));
        }
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    let call = async {
        grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        grpc.unary(tonic::Request::new(HealthCheckRequest { service: service.to_string() }), path, codec).await
    };
    match tokio::time::timeout_at(deadline, call).await {
        Err(_) => ProbeOutcome::Failure(format!("timeout: health rpc did not complete within {within}")),
        Ok(Err(status)) => ProbeOutcome::Failure(rpc_failure(&status, &within)),
        Ok(Ok(resp)) => {
            let s = resp.into_inner().status;
            if s == 1 {
                ProbeOutcome::Success
            } else {
                ProbeOutcome::Failure(format!("service unhealthy (responded with \"{}\")", serving_status_name(s)))
            }
        }
    }
}

/// Upstream's text for a Check call that ended with a gRPC status.
fn rpc_failure(status: &tonic::Status, within: &str) -> String {
    match status.code() {
        tonic::Code::Unimplemented => format!(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
            status.message()
        ),
        tonic::Code::DeadlineExceeded => format!("timeout: health rpc did not complete within {within}"),
        code => format!("error: health rpc probe failed: rpc error: code = {code:?} desc = {}", status.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_connection_is_a_failure() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let out = grpc_probe("127.0.0.1", port, "", Duration::from_secs(1)).await;
        assert!(
            matches!(&out, ProbeOutcome::Failure(m) if m.starts_with(&format!("timeout: failed to connect service \"127.0.0.1:{port}\""))),
            "{out:?}"
        );
        assert_eq!(serving_status_name(2), "NOT_SERVING");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_with_the_go_duration() {
        // Accepts and never answers the HTTP/2 handshake.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let out = grpc_probe("127.0.0.1", port, "", Duration::from_millis(300)).await;
        hold.abort();
        let ProbeOutcome::Failure(m) = &out else { panic!("{out:?}") };
        assert!(m.starts_with("timeout: ") && m.contains("within 300ms"), "{m}");
    }

    #[test]
    fn rpc_failures_read_as_upstream() {
        let unimpl = tonic::Status::unimplemented("unknown service grpc.health.v1.Health");
        assert_eq!(
            rpc_failure(&unimpl, "1s"),
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"
        );
        assert_eq!(rpc_failure(&tonic::Status::deadline_exceeded("x"), "500ms"), "timeout: health rpc did not complete within 500ms");
        assert_eq!(
            rpc_failure(&tonic::Status::not_found("unknown service"), "1s"),
            "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
        );
    }
}
