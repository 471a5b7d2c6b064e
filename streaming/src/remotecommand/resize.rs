//! The resize channel/stream: a sequence of JSON `TerminalSize` objects
//! (`{"Width":80,"Height":24}`), decoded as Go's `json.Decoder` does (field names match without
//! regard to case; the first error ends the stream).

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::runtime::TermSize;

/// Capacity of the channel handed to the runtime.
pub(crate) const RESIZE_QUEUE: usize = 4;

/// Reads sizes from `reader` into `tx` until the stream ends, does not parse, or the runtime
/// drops its receiver.
pub(crate) async fn decode<R: AsyncRead + Unpin>(mut reader: R, tx: mpsc::Sender<TermSize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        loop {
            let mut values = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            let value = match values.next() {
                Some(Ok(value)) => value,
                Some(Err(e)) if e.is_eof() => break,
                None => break,
                Some(Err(e)) => {
                    tracing::debug!("resize: {e}");
                    return;
                }
            };
            let used = values.byte_offset();
            buf.drain(..used);
            let Some(size) = term_size(&value) else {
                tracing::debug!("resize: not a terminal size: {value}");
                return;
            };
            if tx.send(size).await.is_err() {
                return;
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn term_size(value: &Value) -> Option<TermSize> {
    let object = value.as_object()?;
    let mut size = TermSize::default();
    for (key, v) in object {
        let field = if key.eq_ignore_ascii_case("width") {
            &mut size.width
        } else if key.eq_ignore_ascii_case("height") {
            &mut size.height
        } else {
            continue;
        };
        *field = u16::try_from(v.as_u64()?).ok()?;
    }
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decodes_a_stream_of_sizes() {
        let input: &[u8] = br#"{"Width":80,"Height":24}{"width":100, "height":50, "x":1}
{"Width":1}  [1]{"Width":2}"#;
        let (tx, mut rx) = mpsc::channel(8);
        decode(input, tx).await;
        assert_eq!(rx.recv().await, Some(TermSize { width: 80, height: 24 }));
        assert_eq!(rx.recv().await, Some(TermSize { width: 100, height: 50 }));
        assert_eq!(rx.recv().await, Some(TermSize { width: 1, height: 0 }));
        assert_eq!(rx.recv().await, None, "stops at the first value that is not a size");
    }
}
