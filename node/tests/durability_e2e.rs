//! Durability with the real `ifsnode` binary: separate `ifsnode run`
//! processes on loopback with short capacity and repair intervals, driven
//! only through the commands a user has (`put`, `get`, `ls`, `status`,
//! `peers`, `donate`, `leave`).

#[path = "durability_e2e/bandwidth.rs"]
mod bandwidth;
#[allow(dead_code)]
#[path = "data_path/support.rs"]
mod cluster;
#[path = "admin/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "durability_e2e/support.rs"]
mod support;

use cluster::{random_bytes, text_bytes};
use support::*;

const MIB: u64 = 1 << 20;

#[test]
fn a_lost_holder_is_replaced_and_a_lowered_donation_is_offloaded_and_kept() {
    let t0 = std::time::Instant::now();
    let phase = |what: &str| eprintln!("[{:6.1} s] {what}", t0.elapsed().as_secs_f64());
    let mut c = start(6);
    phase("6 nodes alive");
    let work = c.dir.path().join("files");
    std::fs::create_dir(&work).unwrap();
    let files = [
        ("random.bin", random_bytes(9 << 20)),
        ("text.log", text_bytes(3 << 20)),
        ("small.bin", random_bytes(1000)),
    ];
    for (name, data) in &files {
        let p = work.join(name);
        std::fs::write(&p, data).unwrap();
        c.ok(0, &["put", p.to_str().unwrap(), "--replicas", "3"]);
    }
    let all_at = |c: &cluster::Cluster, entry: usize, r: u64| {
        let reps = replicas(c, entry);
        reps.len() == files.len() && reps.iter().all(|(_, n)| *n == r)
    };
    assert!(all_at(&c, 0, 3), "{:?}", replicas(&c, 0));
    phase("3 files put");
    let reads_back = |c: &cluster::Cluster, entry: usize| {
        for (name, data) in &files {
            let out = work.join(format!("{name}.{entry}.got"));
            // The same entry may read twice: replace the earlier copy.
            c.ok(entry, &["get", name, out.to_str().unwrap(), "--force"]);
            assert!(
                std::fs::read(&out).unwrap() == *data,
                "{name} read through node {entry} differs"
            );
        }
    };

    // Halve the donation of the node holding the most: it moves chunks away
    // until it holds less than the new cap, and no file loses a replica.
    let busy = (1..6)
        .max_by_key(|&i| status(&c, i)["node"]["used_bytes"].as_u64().unwrap())
        .unwrap();
    let used = status(&c, busy)["node"]["used_bytes"].as_u64().unwrap();
    assert!(used > 2 * MIB, "node {busy} holds {used} bytes");
    let cap = used / 2;
    let d = operator(&c, busy, &["donate", &format!("{cap}B")]);
    assert_eq!(d["donated_bytes"], cap);
    assert!(d["excess_bytes"].as_u64().unwrap() > 0, "{d}");
    let busy_id = c.peer_id(busy);
    wait_for("the node's reported use to drop below its new cap", || {
        peer_row(&c, 0, &busy_id)
            .is_some_and(|r| r["donated_bytes"] == cap && r["used_bytes"].as_u64().unwrap() <= cap)
    });
    let s = status(&c, busy);
    assert!(s["node"]["used_bytes"].as_u64().unwrap() <= cap, "{s}");
    wait_for("every file at 3 live replicas after the offload", || {
        all_at(&c, 0, 3)
    });
    reads_back(&c, busy);
    phase("donation halved, offloaded, files read back");

    // Kill the node holding the most chunks now (never the entry node 0) for
    // good: once the entry node sees it dead, repair brings every chunk back
    // to 3 live holders.
    let victim = (1..6)
        .filter(|&i| i != busy)
        .max_by_key(|&i| status(&c, i)["chunks"].as_u64().unwrap())
        .unwrap();
    assert!(status(&c, victim)["chunks"].as_u64().unwrap() > 0);
    let victim_id = c.peer_id(victim);
    c.kill(victim);
    wait_for("the entry node to see the killed node dead", || {
        peer_row(&c, 0, &victim_id).is_some_and(|r| r["state"] == "dead")
    });
    phase("holder killed and seen dead");
    wait_for("every file back at 3 live replicas", || all_at(&c, 0, 3));
    phase("every file at 3 live replicas");
    let get_entry = (1..6).rev().find(|&i| i != victim).unwrap();
    reads_back(&c, get_entry);
    phase("files read back");

    // The lower donation outlives a restart: config.toml has it, and so does
    // the capacity report of the restarted process.
    let config = std::fs::read_to_string(c.data_dir(busy).join("config.toml")).unwrap();
    assert!(config.contains(&format!(":{cap}B\"")), "{config}");
    restart(&mut c, busy);
    c.wait_alive(busy, 5);
    let s = status(&c, busy);
    assert_eq!(s["node"]["donated_bytes"], cap, "{s}");
    assert!(s["node"]["used_bytes"].as_u64().unwrap() <= cap, "{s}");
    // A report of the restarted process: it lists the new listen address.
    let new_addr = c.addrs[busy].split("/p2p/").next().unwrap().to_string();
    wait_for("the restarted node's report to reach node 0", || {
        peer_row(&c, 0, &busy_id).is_some_and(|r| {
            let addrs = r["addrs"].as_array().unwrap();
            addrs
                .iter()
                .any(|a| a.as_str().unwrap().starts_with(&new_addr))
                && r["donated_bytes"] == cap
        })
    });
    phase("restarted with the lower donation");
}

#[test]
fn donate_and_leave_survive_a_restart() {
    let mut c = start(2);
    let config = c.data_dir(1).join("config.toml");

    let d = operator(&c, 1, &["donate", "64MiB"]);
    assert_eq!(d["donated_bytes"], 64 * MIB);
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains(":64MiB\"")
    );
    restart(&mut c, 1);
    let d = operator(&c, 1, &["donate"]);
    assert_eq!(d["donated_bytes"], 64 * MIB, "{d}");
    assert_eq!(d["leaving"], false);

    let d = operator(&c, 1, &["leave"]);
    assert_eq!(
        (d["leaving"].clone(), d["donated_bytes"].as_u64()),
        (true.into(), Some(0))
    );
    restart(&mut c, 1);
    let d = operator(&c, 1, &["donate"]);
    assert_eq!(d["leaving"], true, "{d}");
    assert_eq!(d["donated_bytes"], 0);
    let check = std::process::Command::new(cluster::bin())
        .args(["check", "--data-dir"])
        .arg(c.data_dir(1))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", cluster::stderr(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("leaving"));
    // Other nodes hear it: the restarted node reports no space to give.
    let id = c.peer_id(1);
    wait_for("node 0 to see the leaving node donate nothing", || {
        peer_row(&c, 0, &id).is_some_and(|r| r["state"] == "alive" && r["donated_bytes"] == 0)
    });

    // A donation ends leaving, for good.
    operator(&c, 1, &["donate", "32MiB"]);
    restart(&mut c, 1);
    let d = operator(&c, 1, &["donate"]);
    assert_eq!(d["leaving"], false, "{d}");
    assert_eq!(d["donated_bytes"], 32 * MIB);
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains("leaving")
    );
}
