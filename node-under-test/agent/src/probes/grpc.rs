//! gRPC probes: grpc.health.v1.Health/Check over tonic, messages written with prost.

use std::time::Duration;

use tonic::transport::Endpoint;

use super::state::ProbeOutcome;

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

/// Calls Health/Check on host:port for `service`.
pub async fn grpc_probe(host: &str, port: u16, service: &str, timeout: Duration) -> ProbeOutcome {
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let endpoint = match Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(timeout).timeout(timeout),
        Err(e) => return ProbeOutcome::Error(e.to_string()),
    };
    let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return ProbeOutcome::Failure(format!(
                "timeout: failed to connect service \"{addr}\" within {}s: {e}",
                timeout.as_secs()
            ));
        }
        Err(_) => {
            return ProbeOutcome::Failure(format!(
                "timeout: failed to connect service \"{addr}\" within {}s",
                timeout.as_secs()
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
    match tokio::time::timeout(timeout, call).await {
        Err(_) => ProbeOutcome::Failure(format!("timeout: health rpc did not complete within {}s", timeout.as_secs())),
        Ok(Err(status)) => ProbeOutcome::Failure(format!(
            "rpc error: code = {:?} desc = {}",
            status.code(),
            status.message()
        )),
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
}
