//! rclone copies a tree in through the WebDAV gateway, `rclone check
//! --download` compares it byte for byte, then a file and a folder are
//! moved and deleted; litmus's basic, copymove, props, locks and http
//! suites pass; properties a client sets survive a move and an overwrite and read
//! back through another node.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Cluster, PATIENCE, random_bytes};
use crate::tool;

/// A running `ifsnode serve`; killed on drop.
pub struct Gateway {
    child: Child,
    /// What it printed after the banner's `NAME: `.
    pub url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `ifsnode serve FLAG 127.0.0.1:0` through node 0 and wait for its
/// `NAME: URL` line (`name` is the flag without its dashes).
pub fn start(c: &Cluster, flag: &str) -> Gateway {
    start_on(c, 0, flag)
}

/// [`start`] through node `node`.
pub fn start_on(c: &Cluster, node: usize, flag: &str) -> Gateway {
    let name = flag.trim_start_matches('-');
    let out = c.dir.path().join(format!("serve-{name}-{node}.out"));
    let mut child = c
        .command(node, &["serve", flag, "127.0.0.1:0"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let banner = format!("{name}: ");
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| l.strip_prefix(banner.as_str())) {
            return Gateway {
                child,
                url: url.trim().to_string(),
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited: {status}");
        }
        assert!(start.elapsed() < PATIENCE, "serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn serve(c: &Cluster) -> Gateway {
    start(c, "--webdav")
}

/// `rclone ARGS` with the config at `conf`, failing the test unless it
/// succeeds; its output.
pub fn rclone(conf: &Path, args: &[&str]) -> String {
    // rclone's AWS SDK fails on a custom CA bundle with its HTTP client
    // ("transport unsupported type"); the gateway speaks plain HTTP.
    let out = Command::new("rclone")
        .args(args)
        .env("RCLONE_CONFIG", conf)
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rclone {args:?}: {text}");
    text
}

#[test]
fn rclone_copies_checks_moves_and_deletes_a_tree() {
    if tool("rclone", "rclone").is_none() {
        return;
    }
    let c = Cluster::start(3);
    let gw = serve(&c);
    let src = c.dir.path().join("src");
    for i in 0..40 {
        let p = src.join(format!("d{}/sub/f{i:02}", i % 3));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, random_bytes(i * 97)).unwrap();
    }
    std::fs::write(src.join("big.bin"), random_bytes(9 << 20)).unwrap();
    let conf = c.dir.path().join("rclone.conf");
    std::fs::write(
        &conf,
        format!("[ifs]\ntype = webdav\nurl = {}\nvendor = other\n", gw.url),
    )
    .unwrap();
    let s = src.to_str().unwrap();
    rclone(&conf, &["copy", s, "ifs:tree"]);
    let check = rclone(&conf, &["check", "--download", s, "ifs:tree"]);
    assert!(check.contains("0 differences found"), "{check}");
    assert!(check.contains("41 matching files"), "{check}");

    rclone(
        &conf,
        &["moveto", "ifs:tree/big.bin", "ifs:tree/d0/big-moved.bin"],
    );
    rclone(&conf, &["move", "ifs:tree/d1", "ifs:tree/d9"]);
    rclone(&conf, &["delete", "ifs:tree/d2/sub/f02"]);
    let listed = rclone(&conf, &["lsf", "-R", "--files-only", "ifs:tree"]);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    assert!(names.contains(&"d0/big-moved.bin"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("d1/") || *n == "big.bin"),
        "{names:?}"
    );
    assert!(names.contains(&"d9/sub/f01"), "{names:?}");
    assert!(!names.contains(&"d2/sub/f02"), "{names:?}");
    assert_eq!(names.len(), 40);
    // The moved file is the same bytes.
    let back = c.dir.path().join("back.bin");
    rclone(
        &conf,
        &[
            "copyto",
            "ifs:tree/d0/big-moved.bin",
            back.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&back).unwrap() == std::fs::read(src.join("big.bin")).unwrap());

    rclone(&conf, &["purge", "ifs:tree/d9"]);
    let listed = rclone(&conf, &["lsf", "ifs:tree"]);
    assert!(!listed.lines().any(|l| l == "d9/"), "{listed}");
}

#[test]
fn litmus_basic_copymove_props_locks_and_http_suites_pass() {
    if tool("litmus", "litmus").is_none() {
        return;
    }
    let c = Cluster::start(3);
    let gw = serve(&c);
    let base = format!("{}litmus/", gw.url);
    let made = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "MKCOL",
            &base,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&made.stdout), "201");
    let out = Command::new("litmus")
        .arg(&base)
        .env("TESTS", "basic copymove props locks http")
        .current_dir(c.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for suite in ["basic", "copymove", "props", "locks", "http"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("<- summary for `{suite}'")))
            .unwrap_or_else(|| panic!("no {suite} summary: {text}"));
        assert!(line.contains(" 0 failed"), "{line}\n{text}");
    }
}

/// Chunks the nodes have served to fetches so far, summed from each
/// node's `/metrics`.
fn fetches_served(admin: &[String]) -> u64 {
    admin
        .iter()
        .map(|a| {
            let r = crate::http::get(a, "/metrics", &[]);
            assert_eq!(r.status, 200, "{}", r.body);
            r.body
                .lines()
                .find_map(|l| {
                    l.strip_prefix(r#"ifs_chunk_operations_total{op="fetch",result="ok"} "#)
                })
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0) as u64
        })
        .sum()
}

/// `curl -s ARGS URL`: the body, and the status code.
fn curl(args: &[&str], url: &str) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "-o", body.to_str().unwrap(), "-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    (std::fs::read(&body).unwrap_or_default(), code)
}

#[test]
fn range_gets_match_byte_for_byte_and_fetch_only_the_chunks_they_need() {
    if tool("curl", "curl").is_none() {
        return;
    }
    let c = Cluster::start_with(3, &["--admin-listen", "127.0.0.1:0"]);
    let admin: Vec<String> = (0..3)
        .map(|i| crate::http::admin_addr(&c.data_dir(i)))
        .collect();
    // 1 KiB segments: 264 chunks, listed by the root record (112) and two
    // pages; the last chunk is short.
    let seg = 1024u64;
    let chunks = 264u64;
    let data = random_bytes((chunks * seg - 300) as usize);
    let size = data.len() as u64;
    let src = c.dir.path().join("paged.bin");
    std::fs::write(&src, &data).unwrap();
    let src = src.to_str().unwrap();
    c.ok(
        0,
        &["put", src, "--segment-size", "1KiB", "--replicas", "2"],
    );
    let gw = serve(&c);
    let url = format!("{}paged.bin", gw.url);

    // HEAD answers from the listing: no chunk is fetched.
    let before = fetches_served(&admin);
    let (_, code) = curl(&["-I"], &url);
    assert_eq!(code, "200");
    assert_eq!(fetches_served(&admin), before, "HEAD fetched chunks");

    let page1 = 112 * seg;
    let page2 = 2 * page1;
    // (curl -r argument, first byte, last byte, chunks that hold them)
    let cases = [
        ("0-1023".to_string(), 0, 1023, 1),
        ("5120-7167".into(), 5120, 7167, 2),
        ("10340-10539".into(), 10340, 10539, 1),
        (
            format!("{}-{}", 20 * seg - 1, 20 * seg),
            20 * seg - 1,
            20 * seg,
            2,
        ),
        (
            format!("{}-{}", page1 - 1500, page1 + 1499),
            page1 - 1500,
            page1 + 1499,
            4,
        ),
        (
            format!("{}-{}", page2 - 10, page2 + 9),
            page2 - 10,
            page2 + 9,
            2,
        ),
        ("-1".into(), size - 1, size - 1, 1),
        (format!("{}-", size - 1000), size - 1000, size - 1, 2),
        (
            format!("{}-{}", size - 1000, size + 100_000),
            size - 1000,
            size - 1,
            2,
        ),
    ];
    for (range, first, last, want) in cases {
        let before = fetches_served(&admin);
        let (body, code) = curl(&["-r", &range], &url);
        assert_eq!(code, "206", "-r {range}");
        assert!(
            body == data[first as usize..=last as usize],
            "-r {range}: {} bytes differ from the file's",
            body.len()
        );
        assert_eq!(
            fetches_served(&admin) - before,
            want,
            "-r {range}: chunks fetched"
        );
    }

    // A whole GET streams every chunk once.
    let before = fetches_served(&admin);
    let (body, code) = curl(&[], &url);
    assert_eq!(code, "200");
    assert!(body == data, "the whole file differs");
    assert_eq!(fetches_served(&admin) - before, chunks);

    // A range from past the end is refused before anything is fetched.
    let before = fetches_served(&admin);
    let (_, code) = curl(&["-r", &format!("{size}-")], &url);
    assert_eq!(code, "416");
    assert_eq!(fetches_served(&admin), before);
}

/// A PROPPATCH body setting (`Some`) or removing (`None`) properties of
/// namespace `urn:ifs-test`.
fn proppatch(props: &[(&str, Option<&str>)]) -> String {
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:T="urn:ifs-test">"#,
    );
    for (name, value) in props {
        match value {
            Some(v) => body.push_str(&format!(
                "<D:set><D:prop><T:{name}>{v}</T:{name}></D:prop></D:set>"
            )),
            None => body.push_str(&format!(
                "<D:remove><D:prop><T:{name}/></D:prop></D:remove>"
            )),
        }
    }
    body.push_str("</D:propertyupdate>");
    body
}

/// The PROPFIND (depth `depth`) answer for properties `names` of
/// namespace `urn:ifs-test`, and its status.
fn propfind(url: &str, depth: &str, names: &[&str]) -> (String, String) {
    let props: String = names.iter().map(|n| format!("<T:{n}/>")).collect();
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:T="urn:ifs-test"><D:prop>{props}</D:prop></D:propfind>"#
    );
    let (out, code) = curl(
        &[
            "-X",
            "PROPFIND",
            "-H",
            &format!("Depth: {depth}"),
            "--data-binary",
            &body,
        ],
        url,
    );
    (String::from_utf8_lossy(&out).into_owned(), code)
}

/// The `<D:response>` of `href_end` in a multistatus answer.
fn response_of<'a>(multistatus: &'a str, href_end: &str) -> &'a str {
    multistatus
        .split("<D:response>")
        .find(|r| {
            r.split("</D:href>")
                .next()
                .is_some_and(|h| h.ends_with(href_end))
        })
        .unwrap_or_else(|| panic!("no response for {href_end}: {multistatus}"))
}

/// The text of property `name` in one `<D:response>`, when it was found
/// (status 200); `None` when it was not.
fn found_value(response: &str, name: &str) -> Option<String> {
    response.split("<D:propstat>").find_map(|ps| {
        if !ps.contains("200 OK") {
            return None;
        }
        let open = ps.find(&format!(":{name}"))?;
        let rest = &ps[open..];
        let start = rest.find('>')? + 1;
        let end = rest[start..].find("</")?;
        Some(rest[start..start + end].to_string())
    })
}

#[test]
fn properties_set_by_a_client_survive_move_and_overwrite_and_read_back_through_another_node() {
    if tool("curl", "curl").is_none() {
        return;
    }
    let c = Cluster::start(3);
    let a = start_on(&c, 0, "--webdav");
    let b = start_on(&c, 1, "--webdav");
    // A small file goes into a pack (MOVE writes a new entry naming its
    // slice); a larger one has a record of its own (MOVE re-uploads it).
    for (size, name) in [(200 * 1024, "small"), (700 * 1024, "large")] {
        properties_follow_the_file(&c, &a, &b, size, name);
    }

    // The top folder has no entry to hold properties.
    let set = proppatch(&[("color", Some("blue"))]);
    let (out, code) = curl(&["-X", "PROPPATCH", "--data-binary", &set], &a.url);
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, "207", "{out}");
    assert!(out.contains("403"), "{out}");
}

/// Through gateway `a`: put NAME.bin of `size` bytes, set two properties,
/// remove one, move it into folder NAME/; through `b`: the moved file has
/// the one property and the bytes put; written over (same size class),
/// it keeps the property; a PROPPATCH over the caps changes nothing.
fn properties_follow_the_file(c: &Cluster, a: &Gateway, b: &Gateway, size: usize, name: &str) {
    let data = random_bytes(size);
    let src = c.dir.path().join(format!("{name}.bin"));
    std::fs::write(&src, &data).unwrap();
    let url = format!("{}{name}.bin", a.url);
    let (_, code) = curl(&["-T", src.to_str().unwrap()], &url);
    assert_eq!(code, "201");

    // Set two properties, then remove one.
    let set = proppatch(&[("color", Some("blue")), ("owner", Some("ann"))]);
    let (out, code) = curl(&["-X", "PROPPATCH", "--data-binary", &set], &url);
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, "207", "{out}");
    assert!(
        out.contains("200 OK") && !out.contains("HTTP/1.1 4"),
        "{out}"
    );
    let (out, _) = propfind(&url, "0", &["color", "owner"]);
    let r = response_of(&out, &format!("{name}.bin"));
    assert_eq!(found_value(r, "color").as_deref(), Some("blue"), "{out}");
    assert_eq!(found_value(r, "owner").as_deref(), Some("ann"), "{out}");
    let (_, code) = curl(
        &[
            "-X",
            "PROPPATCH",
            "--data-binary",
            &proppatch(&[("owner", None)]),
        ],
        &url,
    );
    assert_eq!(code, "207");

    // Move it into a folder.
    let (_, code) = curl(&["-X", "MKCOL"], &format!("{}{name}", a.url));
    assert_eq!(code, "201");
    let moved = format!("{}{name}/moved.bin", a.url);
    let (_, code) = curl(
        &["-X", "MOVE", "-H", &format!("Destination: {moved}")],
        &url,
    );
    assert_eq!(code, "201");

    // Through another node's gateway: the folder lists the moved file with
    // its one remaining property, and its bytes are the ones put.
    let (out, code) = propfind(&format!("{}{name}/", b.url), "1", &["color", "owner"]);
    assert_eq!(code, "207", "{out}");
    let r = response_of(&out, &format!("{name}/moved.bin"));
    assert_eq!(found_value(r, "color").as_deref(), Some("blue"), "{out}");
    assert_eq!(
        found_value(r, "owner"),
        None,
        "removed before the move: {out}"
    );
    let (got, code) = curl(&[], &format!("{}{name}/moved.bin", b.url));
    assert_eq!(code, "200");
    assert!(got == data, "{name}: the moved file's bytes differ");
    let (_, code) = curl(&[], &url);
    assert_eq!(code, "404", "the old name is gone");

    // Written over, the file keeps its properties.
    let newer = random_bytes(size + 1000);
    std::fs::write(&src, &newer).unwrap();
    let (_, code) = curl(
        &["-T", src.to_str().unwrap()],
        &format!("{}{name}/moved.bin", b.url),
    );
    assert_eq!(code, "204");
    let (out, _) = propfind(&moved, "0", &["color"]);
    assert_eq!(
        found_value(response_of(&out, "moved.bin"), "color").as_deref(),
        Some("blue"),
        "{out}"
    );

    // Too much is refused whole (507), and what was there stays.
    let huge = "z".repeat(5000);
    let (out, code) = curl(
        &[
            "-X",
            "PROPPATCH",
            "--data-binary",
            &proppatch(&[("color", Some("red")), ("blob", Some(&huge))]),
        ],
        &moved,
    );
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, "207", "{out}");
    assert!(out.contains("507"), "{out}");
    let (out, _) = propfind(&moved, "0", &["color", "blob"]);
    let r = response_of(&out, "moved.bin");
    assert_eq!(found_value(r, "color").as_deref(), Some("blue"), "{out}");
    assert_eq!(found_value(r, "blob"), None, "{out}");
    let (got, _) = curl(&[], &moved);
    assert!(got == newer, "{name}: the file written over reads back");
}
