//! The guest's stdout and stderr: in-memory buffers that keep the first `cap` bytes and
//! silently drop the rest. The guest's writes always succeed, so a chatty guest is not ended by
//! its own logging (a Rust guest's `println!` panics on a failed write, and wasmtime-wasi's
//! `MemoryOutputPipe` fails writes past its capacity with `EIO`).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How many bytes the guest may write at once (WASI's write permit); writes are split to this.
const WRITE_PERMIT: usize = 64 << 10;

#[derive(Debug, Default)]
struct Kept {
    bytes: Vec<u8>,
    truncated: bool,
}

/// One capped log; clones share the buffer.
#[derive(Debug, Clone)]
pub(crate) struct CappedLog {
    cap: usize,
    kept: Arc<Mutex<Kept>>,
}

impl CappedLog {
    pub(crate) fn new(cap: usize) -> Self {
        Self { cap, kept: Arc::default() }
    }

    fn append(&self, bytes: &[u8]) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.cap.saturating_sub(kept.bytes.len());
        let n_kept = room.min(bytes.len());
        kept.bytes.extend_from_slice(&bytes[..n_kept]);
        kept.truncated |= n_kept < bytes.len();
    }

    /// The bytes kept, and whether any were dropped.
    pub(crate) fn contents(&self) -> (Vec<u8>, bool) {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        (kept.bytes.clone(), kept.truncated)
    }
}

impl IsTerminal for CappedLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedLog {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for CappedLog {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_up_to_the_cap() {
        let log = CappedLog::new(5);
        log.append(b"abc");
        assert_eq!(log.contents(), (b"abc".to_vec(), false));
        log.append(b"de");
        assert_eq!(log.contents(), (b"abcde".to_vec(), false), "exactly at the cap is not truncated");
        log.append(b"f");
        assert_eq!(log.contents(), (b"abcde".to_vec(), true));
        let empty = CappedLog::new(0);
        empty.append(b"");
        assert_eq!(empty.contents(), (Vec::new(), false));
    }
}
