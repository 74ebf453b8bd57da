//! The PROXY protocol, version 2 (HAProxy's `send-proxy-v2`): a load balancer in front of the
//! grid opens each connection with a binary header naming the client it carries, so that the
//! per-address caps and quotas count clients, not the balancer. Only connections from the
//! addresses in `proxy_protocol_from` are read this way; from them the header is required.
//!
//! The header: a 12-byte signature, a version/command byte (`0x21` PROXY, `0x20` LOCAL: the
//! balancer's own health check), an address family/transport byte (`0x11` TCP over IPv4,
//! `0x21` TCP over IPv6), a big-endian length, then the source and destination addresses and
//! ports, and optional TLVs (skipped). Exactly the header is read; the HTTP request after it is
//! left on the socket.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 signature.
const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest header taken (addresses plus TLVs); HAProxy's own are far shorter.
const MAX_LENGTH: usize = 1_024;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("PROXY v2 header: {what}"))
}

/// Reads the PROXY v2 header that must open `stream`: the client's address for a proxied
/// connection, `None` for the balancer's own (`LOCAL`) or one with no address (`UNSPEC`).
pub(super) async fn read_header<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<Option<SocketAddr>> {
    let mut fixed = [0u8; 16];
    stream.read_exact(&mut fixed).await?;
    let length = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let (command, family) = prefix(&fixed)?;
    if length > MAX_LENGTH {
        return Err(invalid("longer than 1024 bytes"));
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    match command {
        Command::Local => Ok(None),
        Command::Proxy => source(family, &body),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Local,
    Proxy,
}

/// The command and the family/transport byte of the fixed part.
fn prefix(fixed: &[u8; 16]) -> io::Result<(Command, u8)> {
    if fixed[..12] != SIGNATURE {
        return Err(invalid("no signature (is the balancer sending send-proxy-v2?)"));
    }
    let command = match fixed[12] {
        0x20 => Command::Local,
        0x21 => Command::Proxy,
        _ => return Err(invalid("not version 2, or an unknown command")),
    };
    Ok((command, fixed[13]))
}

/// The source address of a `PROXY` header's body.
fn source(family: u8, body: &[u8]) -> io::Result<Option<SocketAddr>> {
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    match family {
        // UNSPEC: the balancer does not know the client.
        0x00 => Ok(None),
        0x11 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port(8))))
        }
        0x21 if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port(32))))
        }
        0x11 | 0x21 => Err(invalid("addresses cut short")),
        _ => Err(invalid("not TCP over IPv4 or IPv6")),
    }
}

/// A PROXY v2 header for a TCP connection from `source` to `destination`, as a balancer
/// writes it (tests and tools speak as a balancer with it).
pub fn header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.push(0x21);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            out.extend([0x11, 0, 12]);
            out.extend(from.octets());
            out.extend(to.octets());
        }
        (from, to) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.extend([0x21, 0, 36]);
            out.extend(v6(from).octets());
            out.extend(v6(to).octets());
        }
    }
    out.extend(source.port().to_be_bytes());
    out.extend(destination.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    //! Headers as HAProxy writes them, and what is refused.

    use super::*;

    async fn read(bytes: &[u8]) -> io::Result<Option<SocketAddr>> {
        read_header(&mut &bytes[..]).await
    }

    #[tokio::test]
    async fn a_proxied_connection_names_its_client_and_the_request_after_it_is_left_alone() {
        let to: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        for from in ["203.0.113.7:51234", "[2001:db8::5]:443"] {
            let from: SocketAddr = from.parse().unwrap();
            let mut bytes = header(from, to);
            bytes.extend(b"GET / HTTP/1.1\r\n");
            let mut stream = &bytes[..];
            assert_eq!(read_header(&mut stream).await.unwrap(), Some(from));
            assert_eq!(stream, b"GET / HTTP/1.1\r\n", "only the header is read");
        }
    }

    #[tokio::test]
    async fn a_health_check_and_tlvs_are_taken_and_anything_else_refused() {
        let mut local = SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(read(&local).await.unwrap(), None, "LOCAL: the balancer's own connection");
        let mut with_tlv = header("192.0.2.1:1".parse().unwrap(), "192.0.2.2:2".parse().unwrap());
        with_tlv[15] = 12 + 4;
        with_tlv.extend([0x04, 0, 1, 0xff]);
        assert_eq!(read(&with_tlv).await.unwrap(), Some("192.0.2.1:1".parse().unwrap()));
        let plain = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(read(plain).await.unwrap_err().kind(), io::ErrorKind::InvalidData, "no header");
        let mut v1 = SIGNATURE.to_vec();
        v1.extend([0x11, 0x11, 0, 12]);
        v1.extend([0; 12]);
        assert_eq!(read(&v1).await.unwrap_err().kind(), io::ErrorKind::InvalidData, "version 1 byte");
        let mut short = SIGNATURE.to_vec();
        short.extend([0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert_eq!(read(&short).await.unwrap_err().kind(), io::ErrorKind::InvalidData, "cut short");
        let mut udp = SIGNATURE.to_vec();
        udp.extend([0x21, 0x12, 0, 12]);
        udp.extend([0; 12]);
        assert_eq!(read(&udp).await.unwrap_err().kind(), io::ErrorKind::InvalidData, "UDP");
        let mut long = SIGNATURE.to_vec();
        long.extend([0x21, 0x11, 0xff, 0xff]);
        assert_eq!(read(&long).await.unwrap_err().kind(), io::ErrorKind::InvalidData, "too long");
        assert_eq!(read(&SIGNATURE[..8]).await.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
