//! `fake-apiserver` binary: serve the in-memory API server on an address.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use fake_apiserver::{Config, Server};

#[derive(Parser, Debug)]
#[command(name = "fake-apiserver", about = "In-memory Kubernetes API server for node tests")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: String,
    /// Write a kubeconfig for this server here.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Append the audit log (JSON lines) to this file.
    #[arg(long)]
    audit_file: Option<PathBuf>,
    /// Service ClusterIP range.
    #[arg(long, default_value = "10.96.0.0/16")]
    service_cidr: String,
    /// Node monitor grace period in seconds.
    #[arg(long, default_value_t = 40.0)]
    node_monitor_grace_period: f64,
    /// Events are removed this many seconds after their last write (upstream --event-ttl).
    #[arg(long, default_value_t = 3600.0)]
    event_ttl: f64,
    /// Watch history length per resource.
    #[arg(long, default_value_t = 10_000)]
    watch_history: usize,
    /// Disable the node lifecycle controller.
    #[arg(long)]
    no_node_lifecycle: bool,
    /// Disable the endpointslice controller.
    #[arg(long)]
    no_endpointslices: bool,
    /// Disable the ReplicaSet and Deployment controllers.
    #[arg(long)]
    no_workloads: bool,
    /// Disable the scheduler (pods without spec.nodeName then stay Pending).
    #[arg(long)]
    no_scheduler: bool,
    /// Serve HTTPS with this certificate (PEM); needs --tls-private-key-file.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// The serving certificate's private key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    /// Verify client certificates against this CA bundle (PEM); needs --tls-cert-file.
    #[arg(long, requires = "tls_cert_file")]
    client_ca_file: Option<PathBuf>,
    /// Present this client certificate (PEM) to kubelets; needs --kubelet-client-key.
    #[arg(long, requires = "kubelet_client_key")]
    kubelet_client_certificate: Option<PathBuf>,
    /// The kubelet client certificate's private key (PEM).
    #[arg(long, requires = "kubelet_client_certificate")]
    kubelet_client_key: Option<PathBuf>,
    /// Verify kubelet serving certificates against this CA bundle (not verified without it).
    #[arg(long)]
    kubelet_certificate_authority: Option<PathBuf>,
    /// Serve metrics.k8s.io (kubectl top) by scraping every node's kubelet /metrics/resource.
    #[arg(long)]
    metrics_server: bool,
    /// Seconds between two scrapes of the kubelets (metrics-server's --metric-resolution).
    #[arg(long, default_value_t = 15.0)]
    metric_resolution: f64,
    /// Authorize requests (Node and RBAC authorizers, NodeRestriction), as kube-apiserver with
    /// --authorization-mode=Node,RBAC; off: every request is allowed.
    #[arg(long)]
    authorization: bool,
    /// Static token file (kube-apiserver's --token-auth-file): CSV `token,user,uid[,"g1,g2"]`.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Identifier of the ServiceAccount token issuer (the `iss` claim); repeatable: the first
    /// issues tokens, all are accepted.
    #[arg(long = "service-account-issuer", default_value = fake_apiserver::auth::service_account::DEFAULT_ISSUER)]
    service_account_issuer: Vec<String>,
    /// Identifiers of the API (comma-separated, repeatable); ServiceAccount tokens used against
    /// the API must be for one of them. Default: the issuers.
    #[arg(long, value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// PEM private key (ECDSA P-256 or RSA) that signs ServiceAccount tokens; default: a P-256
    /// key made at start.
    #[arg(long)]
    service_account_signing_key_file: Option<PathBuf>,
    /// PEM public keys (or certificates, or private keys) that also verify ServiceAccount
    /// tokens; repeatable.
    #[arg(long)]
    service_account_key_file: Vec<PathBuf>,
    /// The longest a requested token may live (e.g. `48h`); longer requests are shortened.
    #[arg(long)]
    service_account_max_token_expiration: Option<jiff::SignedDuration>,
    /// Extend the kubelet's projected tokens (3607 s, bound to a pod) to a year, warning after
    /// the requested time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    service_account_extend_token_expiration: bool,
    /// CA bundle published as `ca.crt` in every namespace's `kube-root-ca.crt` ConfigMap
    /// (default: the --client-ca-file bundle; nothing without TLS).
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
    /// Serve HTTPS requests without credentials as system:anonymous (upstream's default); with
    /// `--anonymous-auth=false` they get 401 Unauthorized.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Admission plugins to turn off (upstream's flag); `ServiceAccount` is the one that can be.
    #[arg(long, value_delimiter = ',')]
    disable_admission_plugins: Vec<String>,
    /// Run the built-in benchmark against an in-process server and exit.
    #[arg(long)]
    bench: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let a = Args::parse();
    if a.bench {
        let mut opts = fake_apiserver::bench::BenchOpts::default();
        if let Some(c) = std::env::var("FAKE_APISERVER_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()) {
            opts.concurrency = c;
        }
        let report = fake_apiserver::bench::run(opts).await?;
        println!("{report}");
        return Ok(());
    }
    if let Some(p) = a.disable_admission_plugins.iter().find(|p| p.as_str() != "ServiceAccount") {
        eprintln!("fake-apiserver: --disable-admission-plugins: {p:?} cannot be turned off here; only ServiceAccount can");
        std::process::exit(2);
    }
    let token_auth = match &a.token_auth_file {
        Some(p) => match fake_apiserver::auth::token_file::TokenFile::load(p) {
            Ok((tokens, warnings)) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                Some(tokens)
            }
            Err(e) => {
                eprintln!("fake-apiserver: --token-auth-file: {e}");
                std::process::exit(2);
            }
        },
        None => None,
    };
    let grace = Duration::from_secs_f64(a.node_monitor_grace_period.max(0.1));
    let config = Config {
        listen: a.listen,
        audit_file: a.audit_file,
        service_cidr: a.service_cidr,
        node_monitor_grace_period: grace,
        node_monitor_period: (grace / 8).clamp(Duration::from_millis(50), Duration::from_secs(5)),
        watch_history: a.watch_history,
        node_lifecycle: !a.no_node_lifecycle,
        endpointslices: !a.no_endpointslices,
        workloads: !a.no_workloads,
        scheduler: !a.no_scheduler,
        event_ttl: Duration::from_secs_f64(a.event_ttl.max(0.001)),
        tls: match (a.tls_cert_file, a.tls_private_key_file) {
            (Some(cert_file), Some(key_file)) => Some(fake_apiserver::TlsConfig { cert_file, key_file, client_ca_file: a.client_ca_file }),
            _ => None,
        },
        kubelet_client: match (a.kubelet_client_certificate, a.kubelet_client_key, a.kubelet_certificate_authority) {
            (Some(cert_file), Some(key_file), ca_file) => Some(fake_apiserver::KubeletClientConfig { cert_file, key_file, ca_file }),
            (None, None, Some(_)) => anyhow::bail!("--kubelet-certificate-authority needs --kubelet-client-certificate and --kubelet-client-key"),
            _ => None,
        },
        metrics_server: a.metrics_server,
        metric_resolution: Duration::from_secs_f64(a.metric_resolution.max(0.01)),
        authorization: a.authorization,
        token_auth,
        service_accounts: fake_apiserver::ServiceAccountConfig {
            issuers: a.service_account_issuer,
            api_audiences: a.api_audiences,
            signing_key_file: a.service_account_signing_key_file,
            key_files: a.service_account_key_file,
            max_token_expiration_seconds: a.service_account_max_token_expiration.map(|d| d.as_secs()),
            extend_token_expiration: a.service_account_extend_token_expiration,
        },
        root_ca_file: a.root_ca_file,
        service_account_admission: !a.disable_admission_plugins.iter().any(|p| p == "ServiceAccount"),
        anonymous_auth: a.anonymous_auth,
        ..Config::default()
    };
    let handle = Server::start(config).await?;
    if let Some(p) = &a.kubeconfig_out {
        handle.write_kubeconfig(p)?;
    }
    println!("fake-apiserver ready on {}", handle.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    handle.shutdown().await;
    Ok(())
}
