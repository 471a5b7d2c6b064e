//! Runtime cases: the streaming calls at the CRI level — Exec, Attach and PortForward answer a
//! URL of the runtime's streaming server, which the case opens from the node host as kubelet
//! would and speaks upstream's WebSocket channel protocols to (critest's `streaming.go`).

use anyhow::{Context as _, bail, ensure};
use k8s_cri::v1 as api;

use super::{Env, NODE, WAIT};
use crate::context::CaseCtx;
use crate::cri::{ContainerState, container};
use crate::cri_stream::{self, Output, PORT_FORWARD_PROTOCOL, REMOTE_COMMAND_PROTOCOLS};

/// An Exec URL for `cmd` in container `id`, without stdin or a terminal.
async fn exec_url(e: &mut Env, id: &str, cmd: &[&str], stderr: bool) -> anyhow::Result<String> {
    let req = api::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty: false,
        stdin: false,
        stdout: true,
        stderr,
    };
    Ok(e.cri.rt.exec(req).await.context("Exec")?.into_inner().url)
}

/// Runs `cmd` through an Exec URL: what the streaming server sent until it closed.
async fn exec(e: &mut Env, ctx: &CaseCtx, id: &str, cmd: &[&str], stderr: bool) -> anyhow::Result<(String, Output)> {
    let url = exec_url(e, id, cmd, stderr).await?;
    let mut s = cri_stream::open(ctx.world.host(NODE)?, &url, REMOTE_COMMAND_PROTOCOLS).await?;
    ensure!(
        s.protocol == "v5.channel.k8s.io" || s.protocol == "v4.channel.k8s.io",
        "the streaming server chose subprotocol {:?} of {REMOTE_COMMAND_PROTOCOLS:?}",
        s.protocol
    );
    let out = s.read_to_close().await?;
    Ok((url, out))
}

/// Exec without stdin or a terminal: stdout and stderr arrive on their own channels, exactly;
/// without stderr requested nothing arrives there; success and a non-zero exit code come as
/// upstream's Status on the error channel; an Exec URL serves once. Catches a runtime whose
/// streaming server mixes or drops the streams, reports no exit code, or lets a URL be reused.
pub(crate) async fn exec_streaming(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("stream-exec")?;
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("main", &[])).await?;
    let print = ["/workload", "print", "--stdout", "to-out", "--stderr", "to-err"];

    let (url, out) = exec(e, ctx, &id, &print, true).await?;
    ensure!(out.stdout() == "to-out\n" && out.stderr() == "to-err\n", "exec streams: stdout {:?}, stderr {:?}", out.stdout(), out.stderr());
    let status = out.status()?;
    ensure!(status["status"] == "Success", "the status of a command that exits 0: {status}");

    let (_, out) = exec(e, ctx, &id, &print, false).await?;
    ensure!(out.stdout() == "to-out\n" && out.stderr.is_empty(), "exec without stderr: stdout {:?}, stderr {:?}", out.stdout(), out.stderr());

    let (_, out) = exec(e, ctx, &id, &["/workload", "exit", "--code", "7"], true).await?;
    let status = out.status()?;
    let cause = &status["details"]["causes"][0];
    ensure!(
        status["status"] == "Failure" && status["reason"] == "NonZeroExitCode" && cause["reason"] == "ExitCode" && cause["message"] == "7",
        "the status of a command that exits 7: {status}"
    );

    match cri_stream::open(ctx.world.host(NODE)?, &url, REMOTE_COMMAND_PROTOCOLS).await {
        Ok(_) => bail!("an Exec URL that was used already opened a second session: {url}"),
        Err(err) => {
            let text = format!("{err:#}");
            ensure!(text.contains("404"), "a used Exec URL should be answered 404 Not Found: {text}");
        }
    }
    Ok(())
}

/// An Exec URL for `cmd` in container `id` on a terminal, with stdin when `stdin` (no stderr:
/// a terminal carries both streams on stdout, as kubelet asks for it).
async fn tty_exec_url(e: &mut Env, id: &str, cmd: &[&str], stdin: bool) -> anyhow::Result<String> {
    let req = api::ExecRequest { container_id: id.into(), cmd: cmd.iter().map(|s| s.to_string()).collect(), tty: true, stdin, stdout: true, stderr: false };
    Ok(e.cri.rt.exec(req).await.context("Exec with tty")?.into_inner().url)
}

/// critest's exec with tty=true and stdin=true. The command runs on a terminal: what it writes
/// to stdout and to stderr arrives on the stdout channel with the terminal's `\r\n` line ends,
/// nothing on the stderr channel; a line sent on stdin is echoed by the terminal and read by the
/// command, which writes it back; Ctrl-D at the start of a line is the end of its input, and it
/// exits with Success. Then the terminal follows the client's resizes ([`resize`]). Catches a
/// runtime that ignores `tty` (plain pipes: `\n` line ends, no echo), drops the client's input,
/// never ends the command's input, or drops resizes.
pub(crate) async fn exec_tty_streaming(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("stream-tty")?;
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("main", &[])).await?;
    let print = ["/workload", "print", "--stdout", "to-out", "--stderr", "to-err"];
    // With stdin, as critest and `kubectl exec -it` ask: containerd cuts a terminal's output
    // when the exec has no stdin (containerd issue 4107), which is not what this case is about.
    let url = tty_exec_url(e, &id, &print, true).await?;
    let mut s = cri_stream::open(ctx.world.host(NODE)?, &url, REMOTE_COMMAND_PROTOCOLS).await?;
    let out = s.read_to_close().await?;
    let text = out.stdout();
    ensure!(
        text.contains("to-out\r\n") && text.contains("to-err\r\n") && out.stderr.is_empty(),
        "a command on a terminal: both streams on stdout with \\r\\n line ends expected; stdout {text:?}, stderr {:?}",
        out.stderr()
    );
    ensure!(out.status()?["status"] == "Success", "the status of a command that exits 0: {}", out.status()?);

    let url = tty_exec_url(e, &id, &["/workload", "cat"], true).await?;
    let mut s = cri_stream::open(ctx.world.host(NODE)?, &url, REMOTE_COMMAND_PROTOCOLS).await?;
    s.send(0, b"typed\n").await?;
    let mut out = Output::default();
    // Once echoed by the terminal as typed, once written back by cat.
    let both = s.read_until(&mut out, |o| o.stdout().matches("typed\r\n").count() >= 2).await?;
    ensure!(both, "the exec ended before its input came back twice (echo, then cat): stdout {:?}", out.stdout());
    s.send(0, &[0x04]).await?;
    s.read_until(&mut out, |_| false).await?;
    ensure!(out.stdout().matches("typed\r\n").count() == 2, "after Ctrl-D: stdout {:?}", out.stdout());
    let status = out.status().context("cat's exit after Ctrl-D")?;
    ensure!(status["status"] == "Success", "cat ends with 0 at the end of its input (Ctrl-D on the terminal): {status}");
    resize(e, ctx, &id).await
}

/// `kubectl exec -it`'s resize: a terminal size sent on the resize channel becomes the size of
/// the command's terminal, at once and again at each change (the command sees SIGWINCH).
/// Catches a runtime that drops resize messages or applies only the first.
async fn resize(e: &mut Env, ctx: &CaseCtx, id: &str) -> anyhow::Result<()> {
    let url = tty_exec_url(e, id, &["/workload", "tty-size"], true).await?;
    let mut s = cri_stream::open(ctx.world.host(NODE)?, &url, REMOTE_COMMAND_PROTOCOLS).await?;
    let mut out = Output::default();
    for (width, height) in [(101u16, 37u16), (80, 24)] {
        s.send(4, format!("{{\"Width\":{width},\"Height\":{height}}}").as_bytes()).await?;
        let line = format!("rows {height} cols {width}\r\n");
        let seen = s
            .read_until(&mut out, |o| o.stdout().contains(&line))
            .await
            .with_context(|| format!("waiting for the terminal to be {width}x{height} after a resize; stdout so far {:?}", out.stdout()))?;
        ensure!(seen, "after a resize to {width}x{height} the command's terminal never had that size: stdout {:?}", out.stdout());
    }
    s.send(0, &[0x04]).await?;
    s.read_until(&mut out, |_| false).await?;
    let status = out.status().context("tty-size's exit after Ctrl-D")?;
    ensure!(status["status"] == "Success", "tty-size ends with 0 at the end of its input: {status}");
    Ok(())
}

/// critest's container with a terminal (`tty: true`, stdin): the container's stdin, stdout and
/// stderr are a terminal, so a tty-aware command finds one (`workload tty-size` prints its
/// size); an attach with `tty` gets its output on stdout with the terminal's `\r\n`, its
/// resizes set the terminal's size, and its Ctrl-D ends the command's input, which exits 0.
/// Catches a runtime that ignores a container's `tty` (the command finds no terminal and exits
/// 1), or drops an attach's resizes or input.
pub(crate) async fn container_tty(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("stream-ctty")?;
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("term", &["tty-size"]).tty()).await?;
    let log = pod.log_dir().join("term.log");
    let first = harness::wait::wait_for("the container's first line in its log", WAIT, || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("rows ") { Ok(text) } else { Err(text) }
    })
    .await
    .with_context(|| "a command that needs a terminal wrote nothing: it has none (tty ignored?)".to_string())?;
    ensure!(
        first.lines().any(|l| l.contains(" stdout F rows ")),
        "the terminal's output goes to the log as stdout: {first:?}"
    );
    let req = api::AttachRequest { container_id: id.clone(), stdin: true, tty: true, stdout: true, stderr: false };
    let url = e.cri.rt.attach(req).await.context("Attach with tty")?.into_inner().url;
    let mut s = cri_stream::open(ctx.world.host(NODE)?, &url, REMOTE_COMMAND_PROTOCOLS).await?;
    let mut out = Output::default();
    s.send(4, br#"{"Width":101,"Height":37}"#).await?;
    s.read_until(&mut out, |o| o.stdout().contains("rows 37 cols 101\r\n"))
        .await
        .with_context(|| format!("waiting for the container's terminal to be 101x37 after an attach's resize; stdout so far {:?}", out.stdout()))?;
    s.send(0, &[0x04]).await?;
    let st = e.cri.wait_state(&id, ContainerState::ContainerExited, WAIT).await?;
    ensure!(st.exit_code == 0, "tty-size ends with 0 when an attach ends its input (Ctrl-D): {st:?}");
    ensure!(out.stderr.is_empty(), "an attach with tty has no stderr: {:?}", out.stderr());
    Ok(())
}

/// One logs-generator line's id (`… logs_generator.go:76] <id> <METHOD> …`).
fn line_id(line: &str) -> Option<u64> {
    line.split_once("logs_generator.go:76] ")?.1.split_whitespace().next()?.parse().ok()
}

/// Attach to a running container's output: the lines it writes from then on arrive on the
/// stderr channel (nothing on stdout), in order and none missing, without a replay of what it
/// wrote before; detaching leaves it running. Then critest's attach: input sent through an
/// attach reaches the stdin of a container created with one, and its echo comes back on
/// stdout. Catches a runtime whose Attach serves the log file instead of the live output,
/// drops output, stops the container on detach, or drops the client's input.
pub(crate) async fn attach_streaming(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("stream-attach")?;
    let sid = e.cri.run_pod(&pod).await?;
    let args = ["agnhost", "logs-generator", "--log-lines-total", "600", "--run-duration", "60s"];
    let id = e.cri.run(&sid, &pod, &container("gen", &args)).await?;
    let log = pod.log_dir().join("gen.log");
    // Some output exists before the attach, so that a replay would show.
    let before = harness::wait::wait_for("three lines in the container's log", WAIT, || async {
        let n = std::fs::read_to_string(&log).unwrap_or_default().lines().count();
        if n >= 3 { Ok(n) } else { Err(n) }
    })
    .await?;
    let req = api::AttachRequest { container_id: id.clone(), stdin: false, tty: false, stdout: true, stderr: true };
    let url = e.cri.rt.attach(req).await.context("Attach")?.into_inner().url;
    let mut s = cri_stream::open(ctx.world.host(NODE)?, &url, REMOTE_COMMAND_PROTOCOLS).await?;
    let mut out = Output::default();
    let full_lines = |o: &Output| o.stderr().lines().filter(|l| line_id(l).is_some()).count();
    let open = s.read_until(&mut out, |o| full_lines(o) >= 5 && o.stderr.ends_with(b"\n")).await?;
    ensure!(open, "the attach ended after {:?}", out.stderr());
    s.close().await;
    ensure!(out.stdout.is_empty(), "logs-generator writes to stderr only; the attach's stdout held {:?}", out.stdout());
    let ids: Vec<u64> = out.stderr().lines().filter_map(line_id).collect();
    ensure!(ids.windows(2).all(|w| w[1] == w[0] + 1), "attached lines out of order or missing: ids {ids:?}");
    let first = ids.first().copied().context("no line attached")?;
    ensure!(first as usize >= before, "the attach replayed earlier output: its first line is {first}, the log held {before} lines before Attach");
    let st = e.cri.status(&id).await.context("ContainerStatus after detaching")?;
    ensure!(st.state == ContainerState::ContainerRunning as i32, "the container stopped when the attach was closed: {st:?}");

    let echo = e.cri.run(&sid, &pod, &container("echo", &["cat"]).stdin(false)).await?;
    let req = api::AttachRequest { container_id: echo.clone(), stdin: true, tty: false, stdout: true, stderr: true };
    let url = e.cri.rt.attach(req).await.context("Attach with stdin")?.into_inner().url;
    let mut s = cri_stream::open(ctx.world.host(NODE)?, &url, REMOTE_COMMAND_PROTOCOLS).await?;
    let line = "through the attach\n";
    s.send(0, line.as_bytes()).await?;
    let mut out = Output::default();
    let echoed = s.read_until(&mut out, |o| o.stdout() == line).await?;
    s.close().await;
    ensure!(echoed, "the attach ended before the container echoed its input: stdout {:?}, stderr {:?}", out.stdout(), out.stderr());
    ensure!(out.stderr.is_empty(), "cat wrote to stderr: {:?}", out.stderr());
    Ok(())
}

/// PortForward into a sandbox: the stream of port 8080 reaches the server listening there in
/// the pod's network namespace (HTTP answered with the pod's hostname), each channel first
/// names its port, and nothing arrives on the error channel. Catches a forward into the node's
/// namespace, a stream that carries nothing, or a missing port prefix.
pub(crate) async fn port_forward_streaming(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("stream-pf")?;
    let sid = e.cri.run_pod(&pod).await?;
    e.cri.run(&sid, &pod, &container("server", &["netexec", "--http-port", "8080"])).await?;
    let ip = e.cri.pod_ip(&sid).await?;
    // Listening, not only running: the forward needs the server's socket.
    super::net::wait_hostname(ctx, ip, 8080, "stream-pf").await?;
    let req = api::PortForwardRequest { pod_sandbox_id: sid.clone(), port: vec![8080] };
    let url = e.cri.rt.port_forward(req).await.context("PortForward")?.into_inner().url;
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut s = cri_stream::open(ctx.world.host(NODE)?, &format!("{url}{sep}port=8080"), PORT_FORWARD_PROTOCOL).await?;
    ensure!(s.protocol == PORT_FORWARD_PROTOCOL, "the streaming server chose subprotocol {:?} for port forwarding", s.protocol);
    let port = 8080u16.to_le_bytes().to_vec();
    let mut prefixed = [false; 2];
    let mut answer = Vec::new();
    let mut sent = false;
    while let Some((channel, data)) = s.next_forwarded().await? {
        match channel {
            0 | 1 if !prefixed[channel as usize] => {
                ensure!(data == port, "channel {channel} began with {data:?}, not port 8080 as two bytes little-endian");
                prefixed[channel as usize] = true;
            }
            0 => answer.extend_from_slice(&data),
            1 if data.is_empty() => {}
            1 => bail!("the forward reported an error: {:?}", String::from_utf8_lossy(&data)),
            c => bail!("message on channel {c}; one port uses channels 0 and 1"),
        }
        if prefixed == [true, true] && !sent {
            s.send(0, b"GET /hostname HTTP/1.1\r\nHost: stream-pf\r\nConnection: close\r\n\r\n").await?;
            sent = true;
        }
        if answer.ends_with(b"\r\n\r\nstream-pf") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    ensure!(text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\nstream-pf"), "the answer through the forward: {text:?}");
    s.close().await;
    Ok(())
}
