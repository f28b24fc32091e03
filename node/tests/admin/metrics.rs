//! `/metrics` on real nodes: the `ifs_*` counters move by what a put and a
//! get did, the exposition passes `promtool check metrics`, and a scraper
//! that asks for OpenMetrics gets it.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::http::{admin_addr, get};
use crate::support::{Cluster, random_bytes};

/// Series → value, from the Prometheus text format.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Every node's metrics now.
fn scrape_all(addrs: &[String]) -> Vec<HashMap<String, f64>> {
    addrs
        .iter()
        .map(|a| {
            let r = get(a, "/metrics", &[]);
            assert_eq!(r.status, 200, "{}", r.body);
            parse(&r.body)
        })
        .collect()
}

/// How much `series` grew between two scrapes, summed over the nodes.
fn moved(before: &[HashMap<String, f64>], after: &[HashMap<String, f64>], series: &str) -> f64 {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.get(series).copied().unwrap_or(0.0) - b.get(series).copied().unwrap_or(0.0))
        .sum()
}

#[test]
fn counters_move_by_what_a_put_and_a_get_did() {
    let c = Cluster::start_with(3, crate::ADMIN_ARGS);
    let addrs: Vec<String> = (0..3).map(|i| admin_addr(&c.data_dir(i))).collect();
    let size = 3 << 20;
    let file = c.dir.path().join("in.bin");
    std::fs::write(&file, random_bytes(size)).unwrap();

    let before = scrape_all(&addrs);
    let out = c.ok(
        0,
        &["put", file.to_str().unwrap(), "--replicas", "3", "--json"],
    );
    let put: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chunks = put["chunks"].as_array().unwrap().len() as f64;
    let after_put = scrape_all(&addrs);

    let stores = moved(
        &before,
        &after_put,
        r#"ifs_chunk_operations_total{op="store",result="ok"}"#,
    );
    assert_eq!(stores, 3.0 * chunks, "each chunk stored on 3 nodes");
    let from_client = moved(
        &before,
        &after_put,
        r#"ifs_transfer_bytes_total{direction="in",class="client"}"#,
    );
    // Random bytes do not compress: the ciphertext is the file and a little.
    assert!(
        from_client >= size as f64 && from_client < size as f64 * 1.01,
        "the first hops took the file from the client once: {from_client} bytes for {size}"
    );
    let chain_out = moved(
        &before,
        &after_put,
        r#"ifs_transfer_bytes_total{direction="out",class="chain"}"#,
    );
    let chain_in = moved(
        &before,
        &after_put,
        r#"ifs_transfer_bytes_total{direction="in",class="chain"}"#,
    );
    assert_eq!(
        chain_out,
        2.0 * from_client,
        "forwarded twice along a chain of 3"
    );
    assert_eq!(chain_in, chain_out, "what one hop sends the next receives");
    let granted = moved(
        &before,
        &after_put,
        r#"ifs_reservations_total{result="granted"}"#,
    );
    assert!(granted >= 3.0, "a reservation on every node: {granted}");

    let dest = c.dir.path().join("out.bin");
    let got = c.ok(1, &["get", "in.bin", dest.to_str().unwrap(), "--json"]);
    assert_eq!(std::fs::read(&dest).unwrap().len(), size);
    let got: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["size"], size as u64, "get --json: {got}");
    assert_eq!(got["chunks"].as_f64().unwrap(), chunks);
    let after_get = scrape_all(&addrs);
    let fetches = moved(
        &after_put,
        &after_get,
        r#"ifs_chunk_operations_total{op="fetch",result="ok"}"#,
    );
    assert_eq!(fetches, chunks, "one fetch per chunk");
    let to_client = moved(
        &after_put,
        &after_get,
        r#"ifs_transfer_bytes_total{direction="out",class="client"}"#,
    );
    assert_eq!(
        to_client, from_client,
        "the get read back what the put stored"
    );

    // The gauges agree with the API.
    let overview = get(&addrs[0], "/api/overview", &[]).json();
    let used: f64 = after_get[0]
        .iter()
        .filter(|(k, _)| k.starts_with("ifs_disk_bytes{") && k.contains(r#"kind="used""#))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(used, overview["capacity"]["used_bytes"].as_f64().unwrap());
    assert_eq!(after_get[0][r#"ifs_nodes{state="alive"}"#], 3.0);
    assert!(
        after_get[0].keys().any(|k| k.starts_with("libp2p_")),
        "libp2p's own metrics are there too"
    );

    // rm --json says what it freed; each holder counts its delete.
    let rm = c.ok(0, &["rm", "in.bin", "--json"]);
    let rm: serde_json::Value = serde_json::from_slice(&rm.stdout).unwrap();
    assert_eq!(rm["chunks"].as_f64().unwrap(), chunks, "rm --json: {rm}");
    let after_rm = scrape_all(&addrs);
    let deletes = moved(
        &after_get,
        &after_rm,
        r#"ifs_chunk_operations_total{op="delete",result="ok"}"#,
    );
    assert_eq!(
        deletes,
        rm["confirmed"].as_f64().unwrap(),
        "a delete per holder that freed them"
    );

    // Prometheus asks for OpenMetrics and gets it.
    let om = get(
        &addrs[0],
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    assert!(
        om.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(om.body.contains("# TYPE ifs_chunk_operations counter"));
}

#[test]
fn metrics_pass_promtool() {
    let Some(promtool) = crate::tool("promtool", "prometheus") else {
        return;
    };
    let c = Cluster::start_with(2, crate::ADMIN_ARGS);
    let addr = admin_addr(&c.data_dir(0));
    let file = c.dir.path().join("small.bin");
    std::fs::write(&file, random_bytes(200_000)).unwrap();
    c.ok(0, &["put", file.to_str().unwrap(), "--replicas", "2"]);
    let text = get(&addr, "/metrics", &[]).body;
    assert!(text.contains("ifs_chunk_operations_total{"), "{text}");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
