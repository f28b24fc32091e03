//! End-to-end tests of the admin endpoint with the real `ifsnode` binary:
//! `/metrics` counters move by what a put and a get did and pass
//! `promtool check metrics`; the dashboard, rendered by headless Chromium,
//! shows the values `/api` returns.

#[path = "admin/dashboard.rs"]
mod dashboard;
#[path = "admin/http.rs"]
#[allow(dead_code)] // the gateway and cli tests use the rest of it
mod http;
#[path = "admin/metrics.rs"]
mod metrics;
#[path = "data_path/support.rs"]
#[allow(dead_code)] // each test binary uses a different part of it
mod support;
#[path = "admin/token.rs"]
mod token;

/// `ifsnode run` flags of every node here: the admin endpoint on any free
/// loopback port (written to `DIR/admin.addr`).
const ADMIN_ARGS: &[&str] = &["--admin-listen", "127.0.0.1:0"];

/// A tool the test needs: its path, or `None` when it is missing and the
/// test may skip (CI unset). Under CI a missing tool fails the test.
fn tool(name: &str, package: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "{name} is missing and CI is set: install Debian's {package} (.ci/run does)"
        );
        eprintln!("SKIPPED: {name} not found (apt-get install {package}); CI is not set");
    }
    found
}
