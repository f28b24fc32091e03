//! End-to-end tests of `ifsnode serve` with real clients: rclone's webdav
//! and s3 backends, the litmus suite, curl's ranged GETs, and boto3.

#[path = "admin/http.rs"]
#[allow(dead_code)] // each test binary uses a different part of it
mod http;
#[path = "gateway/s3.rs"]
mod s3;
#[path = "data_path/support.rs"]
#[allow(dead_code)] // each test binary uses a different part of it
mod support;
#[path = "gateway/webdav.rs"]
mod webdav;

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
