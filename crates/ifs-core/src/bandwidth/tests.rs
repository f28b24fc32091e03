use super::*;

/// A transfer that asks for a piece whenever it is due, between `start_ms`
/// and `stop_ms` (simulated time).
struct Flow {
    class: Priority,
    start_ms: u64,
    stop_ms: u64,
    next_ms: u64,
    moved: u64,
    yields: u64,
}

fn flow(class: Priority, start_ms: u64, stop_ms: u64) -> Flow {
    Flow {
        class,
        start_ms,
        stop_ms,
        next_ms: start_ms,
        moved: 0,
        yields: 0,
    }
}

/// Drive `flows` through `link` until `end_ms`: the flow due first asks
/// (ties to the higher class), a grant moves one piece, a refusal makes
/// the flow wait as told. Returns when each flow's bytes moved, per 1 s.
fn run(link: &mut Link, flows: &mut [Flow], end_ms: u64) -> Vec<Vec<u64>> {
    let mut per_sec = vec![vec![0u64; (end_ms / 1000) as usize + 1]; flows.len()];
    while let Some(i) = (0..flows.len())
        .filter(|&i| flows[i].next_ms < flows[i].stop_ms.min(end_ms))
        .min_by_key(|&i| (flows[i].next_ms, flows[i].class))
    {
        let now = flows[i].next_ms.max(flows[i].start_ms);
        match link.request(flows[i].class, PIECE as u64, now) {
            Grant::Go => {
                flows[i].moved += PIECE as u64;
                per_sec[i][(now / 1000) as usize] += PIECE as u64;
                flows[i].next_ms = now;
            }
            Grant::Empty(ms) => flows[i].next_ms = now + ms,
            Grant::Yield(ms) => {
                flows[i].yields += 1;
                flows[i].next_ms = now + ms;
            }
        }
    }
    per_sec
}

const MBIT8: u64 = 8_000_000;

#[test]
fn a_cap_holds_over_a_minute_of_traffic() {
    let mut link = Link::new(Some(MBIT8), 0);
    let mut flows = [flow(Priority::Client, 0, 60_000)];
    run(&mut link, &mut flows, 60_000);
    let rate_bits = flows[0].moved as f64 * 8.0 / 60.0;
    let ratio = rate_bits / MBIT8 as f64;
    assert!(
        (0.98..=1.02).contains(&ratio),
        "moved {rate_bits} bit/s under an 8 Mbit/s cap"
    );
}

#[test]
fn repair_yields_to_a_client_and_resumes_when_it_stops() {
    let mut link = Link::new(Some(MBIT8), 0);
    let mut flows = [
        flow(Priority::Repair, 0, 30_000),
        flow(Priority::Client, 10_000, 20_000),
        flow(Priority::Background, 0, 30_000),
    ];
    let per_sec = run(&mut link, &mut flows, 30_000);
    let (repair, client, background) = (&per_sec[0], &per_sec[1], &per_sec[2]);
    // While the client moves bytes (after its first second), repair and
    // background move nothing and the client has the whole cap.
    for s in 11..20 {
        assert_eq!(repair[s], 0, "repair moved bytes in second {s}");
        assert_eq!(background[s], 0, "background moved bytes in second {s}");
        assert!(
            client[s] * 8 >= MBIT8 * 9 / 10,
            "client starved in second {s}"
        );
    }
    // Before and after, repair (above background) has the link.
    for s in (1..10).chain(21..30) {
        assert!(
            repair[s] * 8 >= MBIT8 * 9 / 10,
            "repair starved in second {s}"
        );
        assert_eq!(background[s], 0, "background moved bytes in second {s}");
    }
    assert!(flows[0].yields > 0, "repair was told to yield");
}

#[test]
fn a_lower_class_alone_on_an_idle_link_gets_the_whole_cap() {
    let mut link = Link::new(Some(MBIT8), 0);
    // The client asked once, long ago: it has no demand any more.
    assert_eq!(link.request(Priority::Client, 1, 0), Grant::Go);
    let mut flows = [flow(Priority::Background, 5_000, 15_000)];
    run(&mut link, &mut flows, 15_000);
    let rate = flows[0].moved as f64 * 8.0 / 10.0;
    assert!(rate >= MBIT8 as f64 * 0.98, "background got {rate} bit/s");
    assert_eq!(flows[0].yields, 0);
}

#[test]
fn a_short_pause_of_the_client_keeps_its_place_but_a_long_one_does_not() {
    let mut link = Link::new(Some(MBIT8), 0);
    assert_eq!(link.request(Priority::Client, 1, 1_000), Grant::Go);
    assert_eq!(
        link.request(Priority::Repair, 1, 1_000 + DEMAND_WINDOW_MS - 1),
        Grant::Yield(MAX_WAIT_MS)
    );
    assert_eq!(
        link.request(Priority::Repair, 1, 1_000 + DEMAND_WINDOW_MS),
        Grant::Go
    );
}

#[test]
fn unlimited_links_never_wait() {
    let mut link = Link::new(None, 0);
    assert_eq!(link.cap(), None);
    assert_eq!(link.request(Priority::Client, u64::MAX, 0), Grant::Go);
    // No priorities either: nothing is scarce.
    assert_eq!(link.request(Priority::Background, u64::MAX, 0), Grant::Go);
    assert_eq!(Link::new(Some(0), 0).cap(), None, "0 means unlimited");
}

#[test]
fn a_live_change_of_the_cap_takes_effect_at_once() {
    let mut link = Link::new(Some(80_000_000), 0);
    let mut flows = [flow(Priority::Client, 0, 10_000)];
    run(&mut link, &mut flows, 10_000);
    let fast = flows[0].moved;
    link.set_cap(Some(MBIT8), 10_000);
    assert_eq!(link.cap(), Some(MBIT8));
    let mut flows = [flow(Priority::Client, 10_000, 20_000)];
    run(&mut link, &mut flows, 20_000);
    let slow = flows[0].moved;
    let ratio = fast as f64 / slow as f64;
    assert!(
        (9.5..=10.5).contains(&ratio),
        "10x cap moved {ratio}x bytes"
    );
    link.set_cap(None, 20_000);
    assert_eq!(link.request(Priority::Client, 1 << 30, 20_000), Grant::Go);
}

#[test]
fn pieces_larger_than_the_burst_still_average_to_the_cap() {
    let mut link = Link::new(Some(MBIT8), 0);
    let (mut now, mut moved) = (0u64, 0u64);
    while now < 60_000 {
        match link.request(Priority::Client, 1 << 20, now) {
            Grant::Go => moved += 1 << 20,
            Grant::Empty(ms) | Grant::Yield(ms) => now += ms,
        }
    }
    let ratio = moved as f64 * 8.0 / 60.0 / MBIT8 as f64;
    assert!((0.97..=1.03).contains(&ratio), "ratio {ratio}");
}

#[test]
fn a_clock_that_steps_back_neither_panics_nor_mints_tokens() {
    let mut link = Link::new(Some(MBIT8), 10_000);
    while link.request(Priority::Client, PIECE as u64, 10_000) == Grant::Go {}
    assert!(matches!(
        link.request(Priority::Client, PIECE as u64, 5_000),
        Grant::Empty(_)
    ));
}

#[test]
fn rates_parse_strictly() {
    assert_eq!(parse_rate("10Mbit"), Ok(Some(10_000_000)));
    assert_eq!(parse_rate("8Mbit/s"), Ok(Some(8_000_000)));
    assert_eq!(parse_rate("8 Mbps"), Ok(Some(8_000_000)));
    assert_eq!(parse_rate("2MB/s"), Ok(Some(16_000_000)));
    assert_eq!(parse_rate("1.5Gbit"), Ok(Some(1_500_000_000)));
    assert_eq!(parse_rate("500kbit"), Ok(Some(500_000)));
    assert_eq!(parse_rate("1MiB/s"), Ok(Some(8 * 1024 * 1024)));
    assert_eq!(parse_rate("0"), Ok(None));
    assert_eq!(parse_rate("0Mbit"), Ok(None));
    for bad in [
        "",
        "10",
        "fast",
        "10 furlongs",
        "Mbit",
        "1.2.3Mbit",
        "-5Mbit",
        "10Mbit/h",
        "1bit",
        "99999999999Gbit",
    ] {
        let e = parse_rate(bad).expect_err(bad);
        assert!(e.to_string().contains("10Mbit"), "{e}");
    }
}

#[test]
fn rates_print_for_people() {
    assert_eq!(RateText(None).to_string(), "unlimited");
    assert_eq!(RateText(Some(8_000_000)).to_string(), "8 Mbit/s");
    assert_eq!(RateText(Some(16_500_000)).to_string(), "16.5 Mbit/s");
    assert_eq!(RateText(Some(500_000)).to_string(), "500 kbit/s");
    assert_eq!(RateText(Some(2_000_000_000)).to_string(), "2 Gbit/s");
}
