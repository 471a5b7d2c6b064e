//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod kubectl;
pub mod pb;
pub mod pki;

use std::time::{Duration, Instant};

use fake_apiserver::{Config, Handle, Server};

pub fn config() -> Config {
    Config { listen: "127.0.0.1:0".into(), ..Config::default() }
}

pub async fn start() -> Handle {
    Server::start(config()).await.expect("server starts")
}

pub async fn start_with(f: impl FnOnce(&mut Config)) -> Handle {
    let mut c = config();
    f(&mut c);
    Server::start(c).await.expect("server starts")
}

pub fn kube_client(h: &Handle) -> kube::Client {
    let cfg = kube::Config::new(h.url().parse().expect("url"));
    kube::Client::try_from(cfg).expect("client")
}

/// Poll `f` every 20 ms until it returns Some, or panic after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
