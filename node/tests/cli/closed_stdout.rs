//! A stdout whose reader is gone (`ifsnode ls | true`, `| head -1`): every
//! subcommand still does its work and ends quietly with exit 0, as `cat`
//! does; `run` and `devnet` go on serving.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, PATIENCE, bin};

/// A pipe whose read end is already closed, as stdout.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// Run `cmd` with a closed stdout; assert it ended quietly: exit 0, no
/// panic, no error line.
#[track_caller]
fn quiet(mut cmd: Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    assert!(
        !err.contains("ifsnode: error") && !err.contains("Broken pipe"),
        "{what} reported the closed stdout: {err}"
    );
    assert_eq!(out.status.code(), Some(0), "{what}: {err}");
}

fn ifsnode(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("IFS_DATA_DIR");
    cmd
}

/// Stdout of a run that must succeed.
fn ok(mut cmd: Command) -> serde_json::Value {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// The subcommands `ifsnode --help` lists.
fn listed_subcommands() -> BTreeSet<String> {
    let out = ifsnode(&["--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The one file `ls --json` lists, if any.
fn the_file(c: &Cluster) -> Option<serde_json::Value> {
    let files = ok(c.command(0, &["ls", "--json"]));
    files.as_array().unwrap().first().cloned()
}

/// Start a long-running `ifsnode ARGS` with a closed stdout and stderr in
/// `log`; wait until it has tried to print its banner.
fn start_service(args: &[&str], log: &Path) -> Child {
    start_service_with(args, log, &[])
}

/// Like [`start_service`] with extra environment variables.
fn start_service_with(args: &[&str], log: &Path, env: &[(&str, &Path)]) -> Child {
    let mut cmd = ifsnode(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap()
        .contains("carrying on without it")
    {
        assert!(start.elapsed() < PATIENCE, "{args:?} printed no banner");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Stop a service with SIGTERM; assert it stops cleanly and never panicked.
fn stop_service(mut child: Child, log: &Path, what: &str) {
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(log).unwrap();
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    assert_eq!(status.code(), Some(0), "{what}: {err}");
}

/// Whether a WebDAV server at `addr` answers OPTIONS with 200.
fn webdav_answers(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(PATIENCE));
    if s.write_all(b"OPTIONS / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}

/// Whether the node at `addr` answers.
fn answers(addr: &str) -> bool {
    let out = ifsnode(&["peers", "--json", "--peer", addr])
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn every_subcommand_does_its_work_and_ends_quietly_on_a_closed_stdout() {
    let c = Cluster::start(3);
    let work = c.dir.path();
    let mut ran = BTreeSet::new();
    let mut case = |sub: &str| {
        ran.insert(sub.to_string());
    };

    // Help and version texts, of the binary and of every subcommand.
    quiet(ifsnode(&["--help"]), "--help");
    quiet(ifsnode(&["--version"]), "--version");
    quiet(ifsnode(&["help"]), "help");
    for sub in listed_subcommands() {
        quiet(ifsnode(&[&sub, "--help"]), &format!("{sub} --help"));
    }
    quiet(ifsnode(&["key", "show", "--help"]), "key show --help");

    // Local commands.
    let fresh = work.join("fresh");
    let fresh_dir = fresh.to_str().unwrap();
    quiet(ifsnode(&["init", "--data-dir", fresh_dir]), "init");
    assert!(fresh.join("config.toml").exists(), "init wrote the config");
    case("init");
    quiet(ifsnode(&["check", "--data-dir", fresh_dir]), "check");
    case("check");
    let reader_home = work.join("reader");
    let mut show = ifsnode(&["key", "show"]);
    show.env("IFS_HOME", &reader_home);
    quiet(show, "key show");
    assert!(
        reader_home.join("user.key").exists(),
        "key show made the key"
    );
    case("key");
    let mut show = ifsnode(&["key", "show", "--json"]);
    show.env("IFS_HOME", &reader_home);
    let reader = ok(show)["public_key"].as_str().unwrap().to_string();
    let rt = work.join("roundtrip");
    std::fs::create_dir(&rt).unwrap();
    let rt_dir = rt.to_str().unwrap();
    quiet(
        ifsnode(&["local-roundtrip", "--dir", rt_dir, "--size", "1MiB"]),
        "local-roundtrip",
    );
    case("local-roundtrip");

    // Commands that talk to the network.
    for sub in ["peers", "status", "doctor"] {
        quiet(c.command(0, &[sub]), sub);
        case(sub);
    }
    let node1 = c.data_dir(0);
    let node1 = node1.to_str().unwrap();
    quiet(c.command(0, &["donate", "--data-dir", node1]), "donate");
    case("donate");
    quiet(
        c.command(0, &["bandwidth", "--data-dir", node1]),
        "bandwidth",
    );
    case("bandwidth");
    let mut create = ifsnode(&["s3-key", "create"]);
    create.env("IFS_HOME", &reader_home);
    quiet(create, "s3-key create");
    let mut list = ifsnode(&["s3-key", "list", "--json"]);
    list.env("IFS_HOME", &reader_home);
    assert_eq!(
        ok(list).as_array().map(Vec::len),
        Some(1),
        "s3-key made a key"
    );
    case("s3-key");
    let file = work.join("hello.txt");
    std::fs::write(&file, b"hello, closed pipe\n").unwrap();
    quiet(
        c.command(0, &["put", file.to_str().unwrap(), "--replicas", "1"]),
        "put",
    );
    assert!(the_file(&c).is_some_and(|f| f["name"] == "hello.txt"));
    case("put");
    let got = work.join("got.txt");
    quiet(
        c.command(1, &["get", "hello.txt", got.to_str().unwrap()]),
        "get FILE",
    );
    assert_eq!(std::fs::read(&got).unwrap(), b"hello, closed pipe\n");
    quiet(c.command(1, &["get", "hello.txt", "-"]), "get -");
    case("get");
    quiet(c.command(0, &["ls"]), "ls");
    case("ls");
    quiet(
        c.command(0, &["share", "hello.txt", "--to", &reader]),
        "share",
    );
    assert!(the_file(&c).is_some_and(|f| f["readers"].as_array().unwrap().len() == 1));
    case("share");
    quiet(
        c.command(0, &["revoke", "hello.txt", "--from", &reader, "-r", "1"]),
        "revoke",
    );
    assert!(the_file(&c).is_some_and(|f| f["readers"].as_array().unwrap().is_empty()));
    case("revoke");
    quiet(c.command(0, &["rm", "hello.txt"]), "rm");
    assert!(the_file(&c).is_none(), "rm removed the file");
    case("rm");
    quiet(c.command(0, &["gc", "--dry-run"]), "gc");
    case("gc");
    let tree = work.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.txt"), b"synced through a closed pipe\n").unwrap();
    quiet(
        c.command(
            0,
            &["sync", tree.to_str().unwrap(), "synced", "--replicas", "1"],
        ),
        "sync",
    );
    case("sync");
    let node3 = c.data_dir(2);
    let node3 = node3.to_str().unwrap();
    quiet(c.command(2, &["leave", "--data-dir", node3]), "leave");
    let d = ok(c.command(2, &["donate", "--data-dir", node3, "--json"]));
    assert_eq!(d["leaving"], true, "leave took effect");
    case("leave");

    // Services keep serving without a reader of their stdout.
    let log = work.join("run.err");
    let node = start_service(
        &["run", "--data-dir", fresh_dir, "--bootstrap", &c.addrs[0]],
        &log,
    );
    let addr = std::fs::read_to_string(fresh.join("node.addr")).unwrap();
    assert!(answers(addr.trim()), "the node serves on");
    stop_service(node, &log, "run");
    case("run");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = work.join("serve.err");
    let listen = format!("127.0.0.1:{port}");
    let home = c.home();
    let mut args = vec!["serve", "--webdav", &listen, "--peer", &c.addrs[0]];
    args.extend(["--replicas", "1"]);
    let gateway = start_service_with(&args, &log, &[("IFS_HOME", home.as_path())]);
    assert!(webdav_answers(&listen), "the gateway serves on");
    stop_service(gateway, &log, "serve");
    case("serve");
    let log = work.join("devnet.err");
    let devnet_dir = work.join("devnet");
    let devnet = start_service(
        &[
            "devnet",
            "--nodes",
            "1",
            "--base-port",
            "0",
            "--dir",
            devnet_dir.to_str().unwrap(),
        ],
        &log,
    );
    // Its first line (the disk share) comes before the node has started.
    let addr_file = devnet_dir.join("node1/node.addr");
    let start = Instant::now();
    while !addr_file.exists() {
        assert!(
            start.elapsed() < PATIENCE,
            "the devnet's node never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let addr = std::fs::read_to_string(&addr_file).unwrap();
    while !answers(addr.trim()) {
        assert!(
            start.elapsed() < PATIENCE,
            "the devnet's node never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_service(devnet, &log, "devnet");
    case("devnet");

    let missing: Vec<String> = listed_subcommands().difference(&ran).cloned().collect();
    assert!(missing.is_empty(), "subcommands not tried: {missing:?}");
}
