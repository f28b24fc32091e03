use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn cand(rtt: f64, range: u8) -> Candidate {
    Candidate {
        rtt_ms: Some(rtt),
        hops: Some(2),
        free_bytes: 10 << 30,
        owner_need_pct: 10,
        reputation: 0.9,
        range: Some(AddrRange::of(IpAddr::V4(Ipv4Addr::new(10, 0, range, 7)))),
        alive: true,
        up_bps: 0,
        down_bps: 0,
    }
}

fn policy() -> Policy {
    Policy {
        need_bytes: 1 << 30,
        ..Policy::default()
    }
}

#[test]
fn ranges_are_slash_24_and_slash_48() {
    let a = AddrRange::of("192.168.1.5".parse().unwrap());
    assert_eq!(a, AddrRange::of("192.168.1.200".parse().unwrap()));
    assert_ne!(a, AddrRange::of("192.168.2.5".parse().unwrap()));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 168, 1, 9).to_ipv6_mapped());
    assert_eq!(AddrRange::of(mapped), a);
    let v6: Ipv6Addr = "2001:db8:1:ff::1".parse().unwrap();
    assert_eq!(
        AddrRange::of(IpAddr::V6(v6)),
        AddrRange::of("2001:db8:1:0::9".parse().unwrap())
    );
    assert_ne!(
        AddrRange::of(IpAddr::V6(v6)),
        AddrRange::of("2001:db8:2::1".parse().unwrap())
    );
}

#[test]
fn each_discard_reason_is_reported() {
    let p = policy();
    let mut c = vec![cand(10.0, 1); 7];
    c[1].alive = false;
    c[2].rtt_ms = None;
    c[3].rtt_ms = Some(5_000.0);
    c[4].free_bytes = 1;
    c[5].reputation = 0.05;
    c[6].owner_need_pct = 99;
    let d = discards(&c, &p);
    assert_eq!(
        d,
        vec![
            (1, Discard::NotAlive),
            (2, Discard::Unreachable),
            (3, Discard::TooSlow { rtt_ms: 5_000.0 }),
            (
                4,
                Discard::NoSpace {
                    free_bytes: 1,
                    need_bytes: 1 << 30
                }
            ),
            (5, Discard::LowReputation { reputation: 0.05 }),
            (6, Discard::OwnerNeedsDisk { owner_need_pct: 99 }),
        ]
    );
    assert_eq!(rank(&c, &p, 7), vec![0]);
    assert_eq!(
        Discard::TooSlow { rtt_ms: 5_000.0 }.to_string(),
        "too slow: 5000.0 ms round trip"
    );
}

#[test]
fn score_prefers_near_roomy_trusted_nodes() {
    let p = policy();
    let base = cand(20.0, 1);
    let s = score(&base, &p);
    assert!((0.0..=1.0).contains(&s));
    assert!(
        score(
            &Candidate {
                rtt_ms: Some(200.0),
                ..base
            },
            &p
        ) < s
    );
    assert!(
        score(
            &Candidate {
                hops: Some(12),
                ..base
            },
            &p
        ) < s
    );
    assert!(
        score(
            &Candidate {
                free_bytes: 2 << 30,
                ..base
            },
            &p
        ) < s
    );
    assert!(
        score(
            &Candidate {
                owner_need_pct: 80,
                ..base
            },
            &p
        ) < s
    );
    assert!(
        score(
            &Candidate {
                reputation: 0.3,
                ..base
            },
            &p
        ) < s
    );
    let w = WEIGHTS;
    let sum = w.latency + w.hops + w.space + w.owner_need + w.reputation + w.upload + w.download;
    assert!((sum - 1.0).abs() < 1e-9);
}

#[test]
fn rank_spreads_copies_over_address_ranges() {
    let p = policy();
    // Three fast nodes in one /24, two slower ones elsewhere.
    let c = vec![
        cand(5.0, 1),
        cand(6.0, 1),
        cand(7.0, 1),
        cand(40.0, 2),
        cand(60.0, 3),
    ];
    assert_eq!(rank(&c, &p, 3), vec![0, 3, 4]);
    // With more copies than ranges, the best of the rest follow by score.
    assert_eq!(rank(&c, &p, 5), vec![0, 3, 4, 1, 2]);
    // Nodes with no known range are each treated as distinct.
    let mut d = c.clone();
    d[1].range = None;
    assert_eq!(rank(&d, &p, 3), vec![0, 1, 3]);
}

#[test]
fn rank_is_deterministic_and_survives_odd_values() {
    let p = policy();
    let mut c = vec![cand(10.0, 1), cand(10.0, 2)];
    assert_eq!(rank(&c, &p, 2), vec![0, 1]);
    c[0].reputation = f64::NAN;
    c[1].rtt_ms = Some(f64::NAN);
    assert_eq!(rank(&c, &p, 2), Vec::<usize>::new());
    assert!(rank(&[], &p, 3).is_empty());
}

#[test]
fn a_node_with_a_tiny_upload_cap_is_chosen_last() {
    let p = policy();
    // Four equal nodes in distinct ranges; the fastest-answering one sends
    // at 1 Mbit/s, another at 8, the others are uncapped.
    let mut c = vec![cand(6.0, 1), cand(8.0, 2), cand(8.0, 3), cand(9.0, 4)];
    c[0].up_bps = 1_000_000;
    c[2].up_bps = 8_000_000;
    assert_eq!(rank(&c, &p, 4), vec![1, 3, 2, 0]);
    // Of three copies, the tiny uplink gets none.
    assert!(!rank(&c, &p, 3).contains(&0));
    // Its score rises with the cap, and an uncapped node scores as before caps.
    let s = |up| score(&Candidate { up_bps: up, ..c[0] }, &p);
    assert!(s(1_000_000) < s(8_000_000));
    assert!(s(8_000_000) < s(100_000_000));
    assert!(s(100_000_000) < s(0));
}

#[test]
fn a_download_cap_counts_less_than_an_upload_cap() {
    let p = policy();
    let base = cand(10.0, 1);
    let slow_up = Candidate {
        up_bps: 2_000_000,
        ..base
    };
    let slow_down = Candidate {
        down_bps: 2_000_000,
        ..base
    };
    assert!(score(&slow_up, &p) < score(&slow_down, &p));
    assert!(score(&slow_down, &p) < score(&base, &p));
}
