//! Refuse to start on a port another process already listens on.
//!
//! The swarm binds its sockets with port reuse (libp2p needs it for hole
//! punching), so a second node given the same port would start beside the
//! first and the two would answer at random. Each explicit (non-zero) TCP
//! or QUIC listen port is therefore bound once without port reuse first:
//! if that fails, something is there.

use anyhow::bail;
use multiaddr::{Multiaddr, Protocol};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

/// What a listen address binds: a TCP or a UDP (QUIC) socket.
#[derive(Debug, PartialEq, Eq)]
enum Bind {
    Tcp(SocketAddr),
    Udp(SocketAddr),
}

/// The socket `addr` binds, when it names an IP and an explicit port.
fn bind_of(addr: &Multiaddr) -> Option<Bind> {
    let mut ip: Option<IpAddr> = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(v4) => ip = Some(v4.into()),
            Protocol::Ip6(v6) => ip = Some(v6.into()),
            Protocol::Tcp(port) if port != 0 => return Some(Bind::Tcp((ip?, port).into())),
            Protocol::Udp(port) if port != 0 => return Some(Bind::Udp((ip?, port).into())),
            _ => {}
        }
    }
    None
}

/// Fail with one line naming the first of `listen` whose port is taken.
pub fn ensure_free(listen: &[Multiaddr]) -> anyhow::Result<()> {
    for addr in listen {
        let (taken, port) = match bind_of(addr) {
            Some(Bind::Tcp(a)) => (TcpListener::bind(a).err(), a.port()),
            Some(Bind::Udp(a)) => (UdpSocket::bind(a).err(), a.port()),
            None => continue,
        };
        if let Some(e) = taken {
            let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                "is already in use (is another node running?)".to_string()
            } else {
                format!("cannot be bound: {e}")
            };
            bail!(
                "cannot listen on {addr}: port {port} {why}; \
                 choose another port with --listen or in config.toml"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_explicit_ip_ports_are_checked() {
        assert_eq!(
            bind_of(&addr("/ip4/127.0.0.1/tcp/4100")),
            Some(Bind::Tcp("127.0.0.1:4100".parse().unwrap()))
        );
        assert_eq!(
            bind_of(&addr("/ip6/::/udp/4101/quic-v1")),
            Some(Bind::Udp("[::]:4101".parse().unwrap()))
        );
        assert_eq!(bind_of(&addr("/ip4/0.0.0.0/tcp/0")), None);
        assert_eq!(bind_of(&addr("/dns4/example.org/tcp/4100")), None);
    }

    #[test]
    fn a_port_with_a_listener_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let listen = addr(&format!("/ip4/127.0.0.1/tcp/{port}"));
        let e = ensure_free(std::slice::from_ref(&listen))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&listen.to_string()) && e.contains("already in use"),
            "{e}"
        );
        drop(taken);
        assert!(ensure_free(&[listen]).is_ok(), "free again once closed");
    }
}
