//! Bandwidth caps on real nodes: set live with `ifsnode bandwidth`, kept
//! in `config.toml`, shown by `status` and in other nodes' tables, applied
//! to chunk bytes (the node's own counters show what moved), and repair
//! copies yield to a client's put on the same link.

use std::collections::HashMap;

use crate::cluster::{Cluster, random_bytes};
use crate::http::{admin_addr, get};
use crate::support::*;

const MIB: usize = 1 << 20;

/// Node `i`'s `ifs_*` series → value.
fn metrics(c: &Cluster, i: usize) -> HashMap<String, f64> {
    let body = get(&admin_addr(&c.data_dir(i)), "/metrics", &[]).body;
    body.lines()
        .filter(|l| l.starts_with("ifs_"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn series(m: &HashMap<String, f64>, name: &str, direction: &str, class: &str) -> f64 {
    m.get(&format!(
        "{name}_total{{direction=\"{direction}\",class=\"{class}\"}}"
    ))
    .copied()
    .unwrap_or(0.0)
}

#[test]
fn a_capped_node_takes_a_put_counts_its_bytes_and_keeps_the_cap() {
    let c = start(3);
    let set = operator(&c, 0, &["bandwidth", "--up", "8Mbit/s", "--down", "8Mbit"]);
    assert_eq!(set["up_bps"], 8_000_000, "{set}");
    assert_eq!(set["down_bps"], 8_000_000, "{set}");
    // Kept for the next start, shown by status, carried by its report.
    let config = std::fs::read_to_string(c.data_dir(0).join("config.toml")).unwrap();
    assert!(
        config.contains("[bandwidth]") && config.contains("8Mbit"),
        "{config}"
    );
    let text = String::from_utf8(c.ok(0, &["status"]).stdout).unwrap();
    assert!(
        text.contains("bandwidth up 8 Mbit/s, down 8 Mbit/s"),
        "{text}"
    );
    let id = c.peer_id(0);
    wait_for("node 1 sees node 0's caps", || {
        peer_row(&c, 1, &id).is_some_and(|r| r["up_bps"] == 8_000_000)
    });
    let m = metrics(&c, 0);
    assert_eq!(
        m.get("ifs_bandwidth_cap_bytes_per_second{direction=\"out\"}"),
        Some(&1e6)
    );

    // Three copies on three nodes: node 0 must receive every chunk.
    let before = metrics(&c, 0);
    let size = 3 * MIB;
    let data = random_bytes(size);
    let file = c.dir.path().join("capped.bin");
    std::fs::write(&file, &data).unwrap();
    c.ok(0, &["put", file.to_str().unwrap(), "--replicas", "3"]);
    let after = metrics(&c, 0);
    let got_in = series(&after, "ifs_bandwidth_bytes", "in", "client")
        - series(&before, "ifs_bandwidth_bytes", "in", "client");
    assert!(
        got_in >= size as f64 && got_in < size as f64 * 1.01,
        "node 0 metered {got_in} bytes in for a {size}-byte file"
    );
    let back = c.dir.path().join("capped.got");
    c.ok(1, &["get", "capped.bin", back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == data, "read back differs");

    // `0` lifts a cap; the other stays.
    let set = operator(&c, 0, &["bandwidth", "--up", "0"]);
    assert_eq!(set["up_bps"], 0, "{set}");
    assert_eq!(set["down_bps"], 8_000_000, "{set}");
    let config = std::fs::read_to_string(c.data_dir(0).join("config.toml")).unwrap();
    assert!(!config.contains("up ="), "{config}");
    // A bad rate is refused before anything is sent.
    let out = c.cli(
        0,
        &[
            "bandwidth",
            "--up",
            "fast",
            "--data-dir",
            c.data_dir(0).to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("10Mbit"));
}

#[test]
fn offload_copies_yield_to_a_client_put_on_a_capped_link() {
    // Two nodes hold a file; a third joins with its download capped. One
    // holder then donates nothing: every chunk it moves must go to the
    // newcomer (the other holder has it), while a client puts through the
    // newcomer. The newcomer's counters show the copies waiting for the put.
    let mut c = start(2);
    let old = random_bytes(12 * MIB);
    let old_file = c.dir.path().join("old.bin");
    std::fs::write(&old_file, &old).unwrap();
    c.ok(0, &["put", old_file.to_str().unwrap(), "--replicas", "2"]);
    let x = add(&mut c);
    for i in 0..3 {
        c.wait_alive(i, 3);
    }
    operator(&c, x, &["bandwidth", "--down", "8Mbit"]);
    let before = metrics(&c, x);

    operator(&c, 1, &["donate", "0"]);
    let repair_in = |m: &HashMap<String, f64>| {
        series(m, "ifs_bandwidth_bytes", "in", "repair")
            - series(&before, "ifs_bandwidth_bytes", "in", "repair")
    };
    wait_for("offload copies flow into the newcomer", || {
        repair_in(&metrics(&c, x)) > 0.0
    });
    let new = random_bytes(6 * MIB);
    let new_file = c.dir.path().join("new.bin");
    std::fs::write(&new_file, &new).unwrap();
    c.ok(x, &["put", new_file.to_str().unwrap(), "--replicas", "2"]);
    let during = metrics(&c, x);
    let moved = |m: &HashMap<String, f64>, class| {
        series(m, "ifs_bandwidth_bytes", "in", class)
            - series(&before, "ifs_bandwidth_bytes", "in", class)
    };
    assert!(
        moved(&during, "client") >= new.len() as f64,
        "the put's bytes came in: {}",
        moved(&during, "client")
    );
    let yields = series(&during, "ifs_bandwidth_yields", "in", "repair")
        - series(&before, "ifs_bandwidth_yields", "in", "repair");
    assert!(
        yields > 0.0,
        "offload copies never waited for the put ({} bytes of them in so far)",
        repair_in(&during)
    );
    // The copies were not starved: once the put is done they finish.
    wait_for("node 1 holds nothing", || {
        status(&c, 1)["node"]["used_bytes"].as_u64() == Some(0)
    });
    assert!(moved(&metrics(&c, x), "repair") >= old.len() as f64);
    for (name, data) in [("old.bin", &old), ("new.bin", &new)] {
        let out = c.dir.path().join(format!("{name}.got"));
        c.ok(0, &["get", name, out.to_str().unwrap()]);
        assert!(std::fs::read(&out).unwrap() == *data, "{name} differs");
    }
}
