//! Beyond loopback the admin endpoint asks for the token in
//! `DIR/admin.token`; the page itself (no data) stays open.

use crate::http::{admin_addr, get};
use crate::support::Cluster;

#[test]
fn beyond_loopback_the_api_needs_the_token() {
    let c = Cluster::start_with(1, &["--admin-listen", "0.0.0.0:0"]);
    let bound = admin_addr(&c.data_dir(0));
    let port = bound.rsplit(':').next().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let token = std::fs::read_to_string(c.data_dir(0).join("admin.token")).unwrap();
    let token = token.trim();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(c.data_dir(0).join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the token is the operator's alone");

    for path in [
        "/api/overview",
        "/api/peers",
        "/api/events",
        "/api/bandwidth",
        "/metrics",
    ] {
        assert_eq!(get(&addr, path, &[]).status, 401, "{path} without a token");
        let wrong = get(&addr, path, &[("Authorization", "Bearer nope")]);
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        let bearer = format!("Bearer {token}");
        let ok = get(&addr, path, &[("Authorization", &bearer)]);
        assert_eq!(ok.status, 200, "{path} with the token: {}", ok.body);
    }
    let page = get(&addr, "/", &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<script src=\"app.js\">"));
}
