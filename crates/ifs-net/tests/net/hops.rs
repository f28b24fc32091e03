//! The UDP hop probe: 0 hops on loopback, garbage ignored.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ifs_net::hops::{HopResponder, PROBE_LEN, ProbeError, probe_hops};
use tokio::net::UdpSocket;

const TIMEOUT: Duration = Duration::from_secs(5);

fn loopback_v4() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn loopback_v6() -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, 0))
}

#[tokio::test]
async fn loopback_probe_reports_zero_hops_v4_and_v6() {
    let v4 = HopResponder::bind_addrs(&[loopback_v4()]).expect("bind v4");
    let report = probe_hops(v4.local_addrs()[0], TIMEOUT)
        .await
        .expect("v4 probe");
    assert_eq!(report.hops, 0);
    assert_eq!(report.seen_ttl, 64);
    assert!(report.rtt < TIMEOUT);

    // IPv6 may be absent in a container; test it when ::1 can be bound.
    match HopResponder::bind_addrs(&[loopback_v6()]) {
        Ok(v6) => {
            let report = probe_hops(v6.local_addrs()[0], TIMEOUT)
                .await
                .expect("v6 probe");
            assert_eq!(report.hops, 0);
        }
        Err(e) => println!("skipping IPv6: {e}"),
    }
}

#[tokio::test]
async fn responder_on_a_fixed_port_answers_both_families() {
    // Find a free UDP port number, then bind the responder on it.
    let port = std::net::UdpSocket::bind(loopback_v4())
        .expect("probe port")
        .local_addr()
        .expect("addr")
        .port();
    let responder = match HopResponder::bind(port) {
        Ok(r) => r,
        Err(e) => panic!("bind on port {port}: {e}"),
    };
    assert!(responder.local_addrs().iter().all(|a| a.port() == port));
    let report = probe_hops(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), TIMEOUT)
        .await
        .expect("probe");
    assert_eq!(report.hops, 0);
    if responder.local_addrs().iter().any(|a| a.is_ipv6()) {
        let report = probe_hops(SocketAddr::from((Ipv6Addr::LOCALHOST, port)), TIMEOUT)
            .await
            .expect("v6");
        assert_eq!(report.hops, 0);
    }
}

#[tokio::test]
async fn garbage_is_ignored_and_responder_keeps_answering() {
    let responder = HopResponder::bind_addrs(&[loopback_v4()]).expect("bind");
    let target = responder.local_addrs()[0];
    let sender = UdpSocket::bind(loopback_v4()).await.expect("sender");

    let mut well_formed_reply = vec![b'I', b'F', b'S', b'H', 1, 2, 64, 0];
    well_formed_reply.extend_from_slice(&[0u8; 16]);
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff],
        vec![0u8; PROBE_LEN],
        vec![0xAB; PROBE_LEN - 1],
        vec![0xAB; PROBE_LEN + 1],
        vec![0x5A; 1500],
        vec![0x00; 60_000],
        well_formed_reply, // a reply is not a probe: no reply loops
    ];
    for (round, datagram) in garbage.iter().enumerate() {
        sender
            .send_to(datagram, target)
            .await
            .expect("send garbage");
        // The responder still answers a real probe after each bad datagram.
        let report = probe_hops(target, TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(report.hops, 0);
    }
    // And it never answered the garbage.
    let mut buf = [0u8; 64];
    let silent = tokio::time::timeout(Duration::from_millis(300), sender.recv_from(&mut buf)).await;
    assert!(silent.is_err(), "garbage got a reply");
}

#[tokio::test]
async fn probe_to_a_closed_port_fails_cleanly() {
    let port = {
        let s = std::net::UdpSocket::bind(loopback_v4()).expect("bind");
        s.local_addr().expect("addr").port()
    };
    let err = probe_hops(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ProbeError::Refused | ProbeError::Timeout),
        "{err}"
    );
}
