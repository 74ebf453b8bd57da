//! A machine's SSH port on the host: a TCP forwarder from `public_host:port` to the machine's
//! sshd inside its network namespace (`10.231.x.2:22`), so renters reach it without any NAT
//! rules on the host. The backend owns each forwarder's task: closing or dropping the
//! [`Forwarder`] stops it and every connection it carries.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How long a connection waits for the machine's sshd to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running forwarder; stopped when closed or dropped.
#[derive(Debug)]
pub(crate) struct Forwarder {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts forwarding the connections `listener` accepts to `target`.
    pub(crate) fn start(listener: TcpListener, target: SocketAddr) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        Ok(Self { addr, task: Some(tokio::spawn(serve(listener, target))) })
    }

    /// The host address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it still runs (an accept loop never ends on its own, but a panic would end it).
    pub(crate) fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }

    /// Stops it and waits until its port is free again.
    pub(crate) async fn close(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Cancelled or panicked, it is over either way.
            let _ = task.await;
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A listener on `host` at `preferred` if it is free and in `ports`, else at the lowest free
/// port of `ports` not in `avoid` (ports other machines of this backend keep while stopped).
pub(crate) async fn bind(
    host: IpAddr,
    ports: &RangeInclusive<u16>,
    preferred: Option<u16>,
    avoid: &BTreeSet<u16>,
) -> Option<TcpListener> {
    let preferred = preferred.filter(|port| ports.contains(port));
    let candidates = preferred.into_iter().chain(ports.clone().filter(|port| !avoid.contains(port)));
    for port in candidates {
        if let Ok(listener) = TcpListener::bind((host, port)).await {
            return Some(listener);
        }
    }
    None
}

async fn serve(listener: TcpListener, target: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((inbound, _)) => {
                connections.spawn(pipe(inbound, target));
            }
            // Out of file descriptors or a connection reset before accept: try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Copies bytes both ways until either side closes. Errors end the connection and nothing else.
async fn pipe(mut inbound: TcpStream, target: SocketAddr) {
    let Ok(Ok(mut outbound)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}
