//! The one definition of "reachable by SSH", for every backend: a TCP connection to the
//! machine's SSH address that reads an SSH-2.0 identification line (RFC 4253 §4.2) in time.
//! Time is charged from this moment, never from the provider's "created".

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Whether an SSH server answers at `addr` with an `SSH-2.0-` banner within `timeout`.
pub async fn answers(addr: SocketAddr, timeout: Duration) -> bool {
    tokio::time::timeout(timeout, read_banner(addr)).await.unwrap_or(false)
}

async fn read_banner(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else { return false };
    let mut seen = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    // Servers may send other lines before the identification line (RFC 4253 §4.2).
    while seen.len() < 8 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if seen.split(|b| *b == b'\n').any(|line| line.starts_with(b"SSH-2.0-")) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    //! A banner counts, a silent port and a wrong greeting do not.

    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn server(greeting: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.write_all(greeting).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn an_ssh_banner_answers() {
        let addr = server(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").await;
        assert!(answers(addr, Duration::from_secs(2)).await);
        let addr = server(b"hello\r\nSSH-2.0-x\r\n").await;
        assert!(answers(addr, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn anything_else_does_not() {
        let http = server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        assert!(!answers(http, Duration::from_millis(300)).await);
        let silent = server(b"").await;
        assert!(!answers(silent, Duration::from_millis(300)).await);
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        assert!(!answers(closed, Duration::from_millis(300)).await);
    }
}
