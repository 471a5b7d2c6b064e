//! Protocol names, channel numbers and header names, as upstream's
//! `k8s.io/apimachinery/pkg/util/remotecommand/constants.go`, `wsstream/conn.go`,
//! `httpstream/httpstream.go` and `k8s.io/api/core/v1` (`StreamType`, `PortHeader`, …).

use std::time::Duration;

/// Remote command (exec/attach) subprotocols; on SPDY they go in `X-Stream-Protocol-Version`.
pub const STREAM_PROTOCOL_V1: &str = "channel.k8s.io";
pub const STREAM_PROTOCOL_V2: &str = "v2.channel.k8s.io";
pub const STREAM_PROTOCOL_V3: &str = "v3.channel.k8s.io";
pub const STREAM_PROTOCOL_V4: &str = "v4.channel.k8s.io";
/// v4 plus the client's CLOSE signal (channel 255) on WebSocket.
pub const STREAM_PROTOCOL_V5: &str = "v5.channel.k8s.io";

/// WebSocket channel subprotocols (`wsstream`): binary frames prefixed with the channel byte, or
/// text frames prefixed with the channel digit and base64 data.
pub const CHANNEL_WEBSOCKET_PROTOCOL: &str = "channel.k8s.io";
pub const BASE64_CHANNEL_WEBSOCKET_PROTOCOL: &str = "base64.channel.k8s.io";
pub const V4_BINARY_WEBSOCKET_PROTOCOL: &str = "v4.channel.k8s.io";
pub const V4_BASE64_WEBSOCKET_PROTOCOL: &str = "v4.base64.channel.k8s.io";

/// Port-forward over SPDY.
pub const PORT_FORWARD_PROTOCOL_V1: &str = "portforward.k8s.io";

/// What SPDY exec/attach negotiate, in the server's order (apimachinery 1.30–1.35
/// `SupportedStreamingProtocols`; v5 is v4 on SPDY).
pub const SUPPORTED_STREAM_PROTOCOLS: [&str; 5] =
    [STREAM_PROTOCOL_V5, STREAM_PROTOCOL_V4, STREAM_PROTOCOL_V3, STREAM_PROTOCOL_V2, STREAM_PROTOCOL_V1];
pub const SUPPORTED_PORT_FORWARD_PROTOCOLS: [&str; 1] = [PORT_FORWARD_PROTOCOL_V1];

/// Remote command channels.
pub const STREAM_STDIN: u8 = 0;
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;
pub const STREAM_ERR: u8 = 3;
pub const STREAM_RESIZE: u8 = 4;
/// v5: `[255, channel]` from the client half-closes `channel`.
pub const STREAM_CLOSE: u8 = 255;

/// Metav1 status bits of the error channel.
pub const NON_ZERO_EXIT_CODE_REASON: &str = "NonZeroExitCode";
pub const EXIT_CODE_CAUSE_TYPE: &str = "ExitCode";

/// HTTP headers (`httpstream`).
pub const HEADER_PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";
pub const HEADER_ACCEPTED_PROTOCOL_VERSIONS: &str = "X-Accepted-Stream-Protocol-Versions";
pub const HEADER_SPDY_31: &str = "SPDY/3.1";

/// SPDY stream headers (lower case on the wire) and their values.
pub const STREAM_TYPE_HEADER: &str = "streamtype";
pub const PORT_HEADER: &str = "port";
pub const PORT_FORWARD_REQUEST_ID_HEADER: &str = "requestid";
pub const STREAM_TYPE_STDIN: &str = "stdin";
pub const STREAM_TYPE_STDOUT: &str = "stdout";
pub const STREAM_TYPE_STDERR: &str = "stderr";
pub const STREAM_TYPE_ERROR: &str = "error";
pub const STREAM_TYPE_RESIZE: &str = "resize";
pub const STREAM_TYPE_DATA: &str = "data";

/// The WebSocket port-forward query parameter (upstream `api.PortHeader`: `port=80,443` or repeated).
pub const PORTS_QUERY_PARAM: &str = "port";

/// Upstream `DefaultStreamCreationTimeout`.
pub const DEFAULT_STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Upstream `DefaultConfig.StreamIdleTimeout`.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);
