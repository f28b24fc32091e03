//! The dashboard as a browser renders it: headless Chromium loads `/` from
//! a real node, runs its script, and the DOM must show what `/api` says
//! (node count, used bytes after a put, a dead node after a kill).
//! With `IFS_DASHBOARD_SCREENSHOTS=DIR` it also saves desktop and phone
//! screenshots there (how `docs/dashboard-*.png` are made).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::http::{admin_addr, get};
use crate::support::{Cluster, PATIENCE, random_bytes};

/// Chromium's common flags: headless, no sandbox (tests may run as root),
/// a throwaway profile, and time for the page's script to fetch and render.
fn chromium(exe: &Path, profile: &Path) -> Command {
    let mut c = Command::new(exe);
    c.args([
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg("--virtual-time-budget=8000");
    c
}

/// The DOM after the page's script ran.
fn rendered(exe: &Path, profile: &Path, url: &str) -> String {
    let out = chromium(exe, profile)
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(
        dom.contains("data-loaded="),
        "the page's script rendered the API data:\n{dom}"
    );
    dom
}

/// The `data-value` of the element with `id`.
fn value_of(dom: &str, id: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let tag = &dom[at..at + dom[at..].find('>').unwrap()];
    let v = tag
        .split("data-value=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("#{id} has no data-value: {tag}"));
    v[..v.find('"').unwrap()].to_string()
}

/// Whether the node table shows `peer` in `state`.
fn row_in_state(dom: &str, peer: &str, state: &str) -> bool {
    dom.contains(&format!("data-peer=\"{peer}\" data-state=\"{state}\""))
}

fn screenshot(exe: &Path, profile: &Path, url: &str, path: &Path, size: &str) {
    let out = chromium(exe, profile)
        .arg(format!("--screenshot={}", path.display()))
        .arg(format!("--window-size={size}"))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success() && path.exists(),
        "screenshot {}",
        path.display()
    );
}

#[test]
fn the_dashboard_shows_what_the_api_says() {
    let Some(exe) = crate::tool("chromium", "chromium") else {
        return;
    };
    let mut c = Cluster::start_with(3, crate::ADMIN_ARGS);
    let addr = admin_addr(&c.data_dir(0));
    let url = format!("http://{addr}/");
    let profile = c.dir.path().join("chromium-profile");

    // A put: every node of R=3 holds it; the first node's used bytes move.
    let file = c.dir.path().join("photo.bin");
    std::fs::write(&file, random_bytes(2 << 20)).unwrap();
    c.ok(0, &["put", file.to_str().unwrap(), "--replicas", "3"]);
    let api = get(&addr, "/api/overview", &[]).json();
    let used = api["capacity"]["used_bytes"].as_u64().unwrap();
    assert!(used >= 2 << 20, "the node holds its copy: {api}");

    let dom = rendered(&exe, &profile, &url);
    assert_eq!(
        value_of(&dom, "node-count"),
        api["nodes"]["total"].to_string()
    );
    assert_eq!(value_of(&dom, "node-count"), "3");
    assert_eq!(value_of(&dom, "used-bytes"), used.to_string());
    assert_eq!(value_of(&dom, "chunks"), api["chunks"].to_string());
    let peers = get(&addr, "/api/peers", &[]).json();
    for p in peers.as_array().unwrap() {
        let (id, state) = (p["peer_id"].as_str().unwrap(), p["state"].as_str().unwrap());
        assert!(
            row_in_state(&dom, id, state),
            "row of {id} {state} in the node table"
        );
    }

    // Kill node 3: once the API calls it dead, so does the page.
    let dead = c.peer_id(2);
    c.kill(2);
    let start = Instant::now();
    loop {
        let peers = get(&addr, "/api/peers", &[]).json();
        let state = peers
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["peer_id"] == dead.as_str())
            .map(|p| p["state"].as_str().unwrap().to_string());
        if state.as_deref() == Some("dead") {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "node 3 never turned dead: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The watcher turns the change into an event within a few seconds.
    let start = Instant::now();
    while !get(&addr, "/api/events", &[])
        .body
        .contains("\"node_dead\"")
    {
        assert!(start.elapsed() < PATIENCE, "no node_dead event");
        std::thread::sleep(Duration::from_millis(300));
    }
    let api = get(&addr, "/api/overview", &[]).json();
    let dom = rendered(&exe, &profile, &url);
    assert!(
        row_in_state(&dom, &dead, "dead"),
        "the page lists node 3 as dead"
    );
    assert_eq!(
        value_of(&dom, "nodes-dead"),
        api["nodes"]["dead"].to_string()
    );
    assert_eq!(value_of(&dom, "nodes-dead"), "1");
    assert!(dom.contains("data-kind=\"node_dead\""), "the event shows");

    if let Some(dir) = std::env::var_os("IFS_DASHBOARD_SCREENSHOTS") {
        let dir = Path::new(&dir);
        screenshot(
            &exe,
            &profile,
            &url,
            &dir.join("dashboard-desktop.png"),
            "1280,900",
        );
        screenshot(
            &exe,
            &profile,
            &url,
            &dir.join("dashboard-phone.png"),
            "390,844",
        );
    }
}
