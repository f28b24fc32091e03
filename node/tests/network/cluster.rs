//! Three `ifsnode run` processes on loopback find each other; a killed node
//! turns suspect, then dead; restarted, it is alive again with a higher seq.

use crate::support::*;

/// Whether `rows` list every one of `ids` in `state` (and only those).
fn all_in_state(rows: &[serde_json::Value], ids: &[String], state: &str) -> bool {
    rows.len() == ids.len()
        && ids
            .iter()
            .all(|id| row(rows, id).is_some_and(|r| r["state"] == state))
}

#[test]
fn three_nodes_measure_each_other_and_track_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (1..=3).map(|i| tmp.path().join(format!("n{i}"))).collect();
    let seed = NodeProc::init_and_start(&dirs[0], None);
    let seed_addr = seed.addr();
    let mut nodes = vec![seed];
    for d in &dirs[1..] {
        nodes.push(NodeProc::init_and_start(d, Some(&seed_addr)));
    }
    let ids: Vec<String> = nodes.iter().map(|n| n.peer_id()).collect();

    // Every node lists all three alive, with RTT and hop count measured.
    for n in &nodes {
        wait_for(
            &format!("{} to see 3 alive nodes with RTT and hops", n.dir.display()),
            || {
                peers(&n.dir).is_some_and(|rows| {
                    all_in_state(&rows, &ids, "alive")
                        && rows
                            .iter()
                            .all(|r| r["rtt_ms"].is_number() && r["hops"] == 0)
                })
            },
        );
    }
    let rows = peers(&nodes[0].dir).unwrap();
    for field in [
        "peer_id",
        "state",
        "addrs",
        "donated_bytes",
        "used_bytes",
        "reserved_bytes",
        "free_bytes",
        "owner_need_pct",
        "rtt_ms",
        "hops",
        "report_age_s",
    ] {
        assert!(
            rows[0].get(field).is_some(),
            "peers --json rows have {field}"
        );
    }
    let status = output(&["status", "--data-dir", nodes[1].dir.to_str().unwrap()]);
    assert!(
        status.status.success(),
        "status with live peers: {status:?}"
    );

    // On loopback, AutoNAT can confirm only loopback addresses: the verdict
    // is "local network" (the DHT keeps serving), and `doctor` says so and
    // dials the node's addresses afresh.
    let d1 = nodes[1].dir.to_str().unwrap();
    wait_for("node 2's AutoNAT verdict", || {
        let out = output(&["status", "--json", "--data-dir", d1]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|s| s["reachability"]["reachability"] == "local_network")
    });
    let status = output(&["status", "--data-dir", d1]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("reach     local network only"), "{text}");
    let doctor = output(&["doctor", "--data-dir", d1]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{doctor:?}");
    assert!(text.contains("local network only"), "{text}");
    assert!(
        text.contains("(loopback: this machine only) answers a fresh dial from here"),
        "{text}"
    );
    assert!(text.contains("2 other nodes alive"), "{text}");

    // Crash node 3: the others see it suspect, then dead.
    let seq_of = |rows: &[serde_json::Value]| row(rows, &ids[2]).unwrap()["seq"].as_u64().unwrap();
    let seq_before = seq_of(&peers(&nodes[0].dir).unwrap());
    nodes[2].kill();
    for n in &nodes[..2] {
        wait_for(
            &format!("{} to see node 3 suspect", n.dir.display()),
            || {
                peers(&n.dir).is_some_and(|rows| {
                    row(&rows, &ids[2]).is_some_and(|r| r["state"] == "suspect")
                })
            },
        );
    }
    for n in &nodes[..2] {
        wait_for(&format!("{} to see node 3 dead", n.dir.display()), || {
            peers(&n.dir)
                .is_some_and(|rows| row(&rows, &ids[2]).is_some_and(|r| r["state"] == "dead"))
        });
    }

    // Restart it: alive again everywhere, with a higher seq, same identity.
    nodes[2] = NodeProc::start(&dirs[2], Some(&seed_addr));
    assert_eq!(nodes[2].peer_id(), ids[2], "identity survives a restart");
    for n in &nodes[..2] {
        wait_for(
            &format!("{} to see node 3 alive again", n.dir.display()),
            || {
                peers(&n.dir).is_some_and(|rows| {
                    all_in_state(&rows, &ids, "alive") && seq_of(&rows) > seq_before
                })
            },
        );
    }
    for n in &mut nodes {
        let st = n.terminate();
        assert!(st.success(), "clean stop on SIGTERM: {st:?}; {}", n.log());
        assert!(n.log().contains("stopped (SIGTERM)"), "{}", n.log());
    }
}

#[test]
fn a_lone_node_is_up_but_not_healthy() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(tmp.path(), None);
    let d = tmp.path().to_str().unwrap();
    let out = output(&["status", "--json", "--timeout", "5", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["node"]["peer_id"], node.peer_id());
    assert_eq!(status["alive_peers"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no other node alive"));
}

#[test]
fn without_any_address_the_error_names_every_source() {
    let tmp = tempfile::tempdir().unwrap();
    let out = output(&["peers", "--data-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["--peer", "IFS_PEER", "node.addr"] {
        assert!(err.contains(needle), "{err} lacks {needle}");
    }
}
