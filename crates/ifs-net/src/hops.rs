//! IP hop count between nodes, measured with a tiny UDP probe.
//!
//! Every node runs a [`HopResponder`] on its listen port number (UDP). A
//! prober sends a probe with a known TTL ([`PROBE_TTL`]); the responder reads
//! the TTL (IPv4, `IP_RECVTTL`) or hop limit (IPv6, `IPV6_RECVHOPLIMIT`) the
//! probe arrived with from the `recvmsg` control data and echoes it with the
//! probe's nonce. Hops = initial TTL − seen TTL: 0 on loopback.
//!
//! Garbage, oversized or truncated datagrams are ignored with a debug log.
//! Replies are no larger than probes and rate-limited, so a responder cannot
//! be used as an amplifier.

mod wire;

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

pub use wire::{NONCE_LEN, PROBE_LEN, hops_from_ttl};

/// The TTL / hop limit probes are sent with.
pub const PROBE_TTL: u8 = 64;
/// Replies one responder socket sends per second at most.
pub const MAX_REPLIES_PER_SEC: u32 = 1000;
/// Receive buffer: larger than a probe, so oversized datagrams are seen whole
/// enough to be refused (and flagged `MSG_TRUNC` beyond it).
const RECV_BUF: usize = 64;

/// The result of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopReport {
    /// IP hops between prober and responder (0 on loopback).
    pub hops: u8,
    /// Round-trip time of the probe.
    pub rtt: Duration,
    /// The TTL / hop limit the probe arrived with.
    pub seen_ttl: u8,
}

/// Why a probe or a responder failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// Binding the responder to `addr` failed.
    #[error("cannot bind hop responder on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// No reply within the timeout.
    #[error("no reply within the timeout")]
    Timeout,
    /// The target port is closed (ICMP port unreachable).
    #[error("the target refused the probe (no responder)")]
    Refused,
    /// Called outside a tokio runtime.
    #[error("no tokio runtime to run the responder on")]
    NoRuntime,
}

/// A running UDP hop responder (one task per bound socket). Dropping it stops
/// the tasks.
#[derive(Debug)]
pub struct HopResponder {
    addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl HopResponder {
    /// Answer probes on `port` over IPv4 (`0.0.0.0`) and IPv6 (`[::]`). IPv6
    /// is skipped with a warning when the host has none; IPv4 must bind.
    pub fn bind(port: u16) -> Result<Self, ProbeError> {
        Self::bind_on(
            &[Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
            port,
        )
    }

    /// Answer probes on `port` at each of `ips`, the node's listen IPs, so a
    /// node listening on 127.0.0.1 answers on loopback only (an unspecified
    /// IP answers on every interface of its family). An IPv6 address that
    /// cannot be bound is skipped with a warning; an IPv4 one must bind.
    pub fn bind_on(ips: &[IpAddr], port: u16) -> Result<Self, ProbeError> {
        let mut responder = Self {
            addrs: Vec::new(),
            tasks: Vec::new(),
        };
        let mut skipped = None;
        for &ip in ips {
            match Self::bind_addrs(&[SocketAddr::new(ip, port)]) {
                Ok(mut one) => {
                    responder.addrs.append(&mut one.addrs);
                    responder.tasks.append(&mut one.tasks);
                }
                Err(e) if ip.is_ipv6() => {
                    warn!(error = %e, "hop responder: no IPv6 on {ip}");
                    skipped = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        match skipped {
            Some(e) if responder.addrs.is_empty() => Err(e),
            _ => Ok(responder),
        }
    }

    /// Answer probes on each of `addrs` (port 0 picks a free port; see
    /// [`HopResponder::local_addrs`]). Must run inside a tokio runtime.
    pub fn bind_addrs(addrs: &[SocketAddr]) -> Result<Self, ProbeError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ProbeError::NoRuntime)?;
        let mut sockets = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let bind_err = |source| ProbeError::Bind { addr, source };
            let socket = responder_socket(addr).map_err(bind_err)?;
            let _guard = runtime.enter();
            let socket = UdpSocket::from_std(socket.into()).map_err(bind_err)?;
            sockets.push(socket);
        }
        let mut bound = Vec::with_capacity(sockets.len());
        let mut tasks = Vec::with_capacity(sockets.len());
        for socket in sockets {
            bound.push(socket.local_addr()?);
            tasks.push(runtime.spawn(serve(socket)));
        }
        Ok(Self {
            addrs: bound,
            tasks,
        })
    }

    /// The bound socket addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

impl Drop for HopResponder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn responder_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// One received datagram with its arrival TTL.
struct Received {
    len: usize,
    from: Option<SocketAddr>,
    ttl: Option<u8>,
    truncated: bool,
}

async fn serve(socket: UdpSocket) {
    let fd = socket.as_raw_fd();
    let mut buf = [0u8; RECV_BUF];
    let mut window = Instant::now();
    let mut sent_in_window = 0u32;
    loop {
        let got = socket
            .async_io(Interest::READABLE, || recv_with_ttl(fd, &mut buf))
            .await;
        let Received {
            len,
            from,
            ttl,
            truncated,
        } = match got {
            Ok(r) => r,
            Err(e) => {
                // Transient (e.g. ICMP errors surfacing on the socket); back off briefly.
                debug!(error = %e, "hop responder: receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (Some(from), false) = (from, truncated) else {
            debug!(len, truncated, "hop responder: ignoring datagram");
            continue;
        };
        let Some(nonce) = wire::parse_probe(&buf[..len.min(RECV_BUF)]) else {
            debug!(%from, len, "hop responder: ignoring malformed datagram");
            continue;
        };
        let Some(ttl) = ttl else {
            debug!(%from, "hop responder: probe without TTL control data");
            continue;
        };
        if window.elapsed() >= Duration::from_secs(1) {
            window = Instant::now();
            sent_in_window = 0;
        }
        if sent_in_window >= MAX_REPLIES_PER_SEC {
            debug!(%from, "hop responder: rate limit reached, dropping probe");
            continue;
        }
        sent_in_window += 1;
        if let Err(e) = socket.send_to(&wire::encode_reply(ttl, &nonce), from).await {
            debug!(%from, error = %e, "hop responder: reply failed");
        }
    }
}

fn recv_with_ttl(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::c_int);
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    let mut ttl = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                    ttl = u8::try_from(t).ok();
                }
                _ => {}
            }
        }
    }
    Ok(Received {
        len: msg.bytes,
        from: msg.address.as_ref().and_then(to_socket_addr),
        ttl,
        truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
    })
}

fn to_socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    let v6 = addr.as_sockaddr_in6()?;
    Some(SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Probe the responder at `target`: send one probe with TTL [`PROBE_TTL`]
/// and wait up to `timeout` for the matching reply.
pub async fn probe_hops(target: SocketAddr, timeout: Duration) -> Result<HopReport, ProbeError> {
    let local = if target.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if target.is_ipv4() {
        socket.set_ttl_v4(u32::from(PROBE_TTL))?;
    } else {
        socket.set_unicast_hops_v6(u32::from(PROBE_TTL))?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&local.into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    socket.connect(target).await?;

    let nonce: [u8; NONCE_LEN] = rand::random();
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    socket.send(&wire::encode_probe(&nonce)).await?;
    let mut buf = [0u8; RECV_BUF];
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Err(ProbeError::Timeout),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(ProbeError::Refused);
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(n)) => n,
        };
        if let Some(seen_ttl) = wire::parse_reply(&buf[..n], &nonce) {
            return Ok(HopReport {
                hops: hops_from_ttl(seen_ttl),
                rtt: start.elapsed(),
                seen_ttl,
            });
        }
        debug!(%target, n, "hop probe: ignoring stray datagram");
    }
}
