//! Two sessions over an in-memory pipe: streams with headers, data both ways, half-close,
//! resets, many streams, large writes.

use spdy::{Error, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pair() -> ((Session, spdy::Incoming), (Session, spdy::Incoming)) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    (Session::client(a), Session::server(b))
}

fn h(kind: &str) -> spdy::Headers {
    vec![("streamtype".into(), kind.into()), ("requestid".into(), "0".into())]
}

#[tokio::test]
async fn streams_carry_headers_data_and_half_close() {
    let ((client, _ci), (_server, mut si)) = pair();
    let opener = tokio::spawn(async move {
        let mut s = client.open(h("stdin")).await.unwrap();
        assert_eq!(s.id() % 2, 1, "client streams are odd");
        s.write_all(b"hello").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = String::new();
        s.read_to_string(&mut back).await.unwrap();
        back
    });
    let mut s = si.accept().await.unwrap();
    assert_eq!(s.header("streamtype"), Some("stdin"));
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "hello", "FIN ends the read");
    s.write_all(b"world").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(opener.await.unwrap(), "world");
}

#[tokio::test]
async fn many_streams_and_a_large_write_arrive_intact() {
    let ((client, _ci), (_server, mut si)) = pair();
    let big: Vec<u8> = (0..(1 << 20) + 17).map(|i| (i % 251) as u8).collect();
    let expect = big.clone();
    let writer = tokio::spawn(async move {
        let mut streams = Vec::new();
        for i in 0..20 {
            streams.push(client.open(vec![("n".into(), i.to_string())]).await.unwrap());
        }
        let mut s = streams.remove(7);
        s.write_all(&big).await.unwrap();
        s.shutdown().await.unwrap();
        drop(streams);
        client
    });
    let mut total = 0;
    let mut seven = Vec::new();
    while let Some(mut s) = si.accept().await {
        total += 1;
        if s.header("n") == Some("7") {
            s.read_to_end(&mut seven).await.unwrap();
        }
        if total == 20 {
            break;
        }
    }
    assert_eq!(seven.len(), expect.len(), "bytes received");
    assert!(seven == expect, "the bytes arrive in order");
    let _client = writer.await.unwrap();
}

#[tokio::test]
async fn reset_and_refusal() {
    let ((client, _ci), (server, mut si)) = pair();
    let t = tokio::spawn(async move {
        let s = si.accept().await.unwrap();
        s.reset(5);
        si
    });
    let mut s = client.open(h("data")).await.unwrap();
    let _si = t.await.unwrap();
    let mut buf = Vec::new();
    let e = s.read_to_end(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
    drop(server);
}

#[tokio::test]
async fn closing_ends_both_sides() {
    let ((client, _ci), (server, _si)) = pair();
    server.close().await;
    tokio::time::timeout(std::time::Duration::from_secs(5), client.closed()).await.unwrap();
    assert!(matches!(client.open(h("x")).await, Err(Error::Closed)));
}

#[tokio::test]
async fn dropping_every_handle_ends_the_tasks() {
    let (a, b) = tokio::io::duplex(1024);
    let (client, ci) = Session::client(a);
    let watcher = client.clone();
    drop(ci);
    drop(client);
    // The watcher clone still holds the session: not closed yet.
    assert!(tokio::time::timeout(std::time::Duration::from_millis(50), watcher.closed()).await.is_err());
    drop(watcher);
    // The peer sees the connection end.
    let mut b = b;
    let mut rest = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), b.read_to_end(&mut rest)).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_reply_just_before_the_hang_up_still_opens_the_stream() {
    // A fast command: the server answers the last stream and closes at once. The reply and the
    // end of the connection reach the client together; the open must still succeed.
    for _ in 0..50 {
        let ((client, _ci), (server, mut si)) = pair();
        let hang_up = tokio::spawn(async move {
            let mut s = si.accept().await.unwrap();
            s.write_all(b"status").await.unwrap();
            s.shutdown().await.unwrap();
            server.close().await;
        });
        let mut s = client.open(h("error")).await.expect("the reply came before the close");
        let mut got = String::new();
        s.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "status", "data sent before the close is delivered");
        hang_up.await.unwrap();
    }
}
