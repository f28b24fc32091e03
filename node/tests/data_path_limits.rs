//! Limits of the data path with the real `ifsnode` binary: the client's
//! peak memory while a large file streams through `put -` and `get NAME -`,
//! and reservations of a failed put lapsing after the node's TTL.

#[path = "data_path/support.rs"]
#[allow(dead_code)] // each test binary uses a different part of it
mod support;

use std::io::{Read, Write};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{Cluster, PATIENCE, stderr};

/// Bytes streamed through put and get in the memory test. 2 GiB by default
/// (the bound is stated for 2 GiB); `IFS_TEST_STREAM_MIB` sets
/// another size, e.g. for a quicker local run.
fn stream_bytes() -> u64 {
    std::env::var("IFS_TEST_STREAM_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(2048)
        << 20
}

/// `want` bytes, or less when the disk under `dir` (which every node of the
/// test shares) cannot hold them with a margin: a full build disk would
/// otherwise fail the put for lack of space, which is not what this test is
/// about. Never less than 512 MiB, still well above the memory bound.
fn fitting(want: u64, dir: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a zeroed statvfs is a valid value to be overwritten.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `s` is a valid out pointer.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut s) }, 0);
    let free = s.f_bavail as u64 * s.f_frsize as u64;
    // The stream once on the nodes, plus room for builds running beside us.
    let fits = free.saturating_sub(2 << 30) & !((1 << 20) - 1);
    if fits >= want {
        return want;
    }
    let size = fits.max(512 << 20);
    eprintln!(
        "only {} MiB free under {}: streaming {} MiB instead of {} MiB",
        free >> 20,
        dir.display(),
        size >> 20,
        want >> 20
    );
    size
}

/// The client's peak resident memory may not exceed this, whatever the size.
const MAX_CLIENT_RSS: u64 = 300 << 20;

/// Block size of the generated stream.
const BLOCK: usize = 1 << 20;

/// Reproducible random bytes: the same seed yields the same stream, so the
/// test checks a get against a regenerated copy instead of a stored one.
struct Source {
    rng: StdRng,
    left: u64,
}

impl Source {
    fn new(seed: u64, len: u64) -> Source {
        Source {
            rng: StdRng::seed_from_u64(seed),
            left: len,
        }
    }

    /// The next block (empty at the end).
    fn next_block(&mut self, buf: &mut Vec<u8>) {
        let n = self.left.min(BLOCK as u64) as usize;
        buf.resize(n, 0);
        self.rng.fill_bytes(buf);
        self.left -= n as u64;
    }
}

/// Wait for `child` and return its exit status and peak resident set size
/// in bytes (`wait4`'s `ru_maxrss`, the child's own high-water mark).
fn wait_with_peak_rss(child: Child) -> (ExitStatus, u64) {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value to be overwritten by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our unreaped child; both pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "wait4: {err}");
    }
    // Reaped here: `child` must not be waited for again.
    std::mem::forget(child);
    (
        ExitStatus::from_raw(status),
        usage.ru_maxrss as u64 * 1024, // KiB on Linux
    )
}

fn mib(b: u64) -> f64 {
    b as f64 / f64::from(1 << 20)
}

#[test]
fn a_large_stream_through_put_and_get_keeps_client_memory_bounded() {
    let c = Cluster::start(3);
    let size = fitting(stream_bytes(), c.dir.path());
    let seed = rand::random::<u64>();

    // put -: generated on the fly into the client's stdin. The client sends
    // each chunk once whatever R is, so R=1 measures the same client while
    // sparing the nodes (and the test's time) two extra copies on disk.
    let started = Instant::now();
    let mut put = c
        .command(
            0,
            &["put", "-", "--name", "big.bin", "--replicas", "1", "--json"],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = put.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut src = Source::new(seed, size);
        let mut buf = Vec::with_capacity(BLOCK);
        loop {
            src.next_block(&mut buf);
            if buf.is_empty() || stdin.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut out = put.stdout.take().unwrap();
    let mut err = put.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut json = Vec::new();
    out.read_to_end(&mut json).unwrap();
    let (status, put_rss) = wait_with_peak_rss(put);
    feeder.join().unwrap();
    let put_err = err_reader.join().unwrap();
    assert!(status.success(), "put failed: {put_err}");
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["size"], size);
    let put_time = started.elapsed();

    // get NAME -: compared block by block with the regenerated stream.
    let started = Instant::now();
    let mut get = c
        .command(2, &["get", "big.bin", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = get.stdout.take().unwrap();
    let mut err = get.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut src = Source::new(seed, size);
    let (mut want, mut got) = (Vec::with_capacity(BLOCK), vec![0u8; BLOCK]);
    let mut read = 0u64;
    loop {
        src.next_block(&mut want);
        if want.is_empty() {
            break;
        }
        if out.read_exact(&mut got[..want.len()]).is_err() {
            break; // short output: the size check below says so
        }
        assert!(got[..want.len()] == want[..], "bytes differ at {read}");
        read += want.len() as u64;
    }
    let extra = out.read(&mut got).unwrap_or(0);
    let (status, get_rss) = wait_with_peak_rss(get);
    let get_err = err_reader.join().unwrap();
    assert!(status.success(), "get failed: {get_err}");
    assert_eq!((read, extra), (size, 0), "get returned the stream's bytes");
    let get_time = started.elapsed();

    eprintln!(
        "{} MiB: put {:.1} s, peak RSS {:.0} MiB; get {:.1} s, peak RSS {:.0} MiB",
        size >> 20,
        put_time.as_secs_f64(),
        mib(put_rss),
        get_time.as_secs_f64(),
        mib(get_rss),
    );
    assert!(
        put_rss <= MAX_CLIENT_RSS,
        "put peaked at {:.0} MiB",
        mib(put_rss)
    );
    assert!(
        get_rss <= MAX_CLIENT_RSS,
        "get peaked at {:.0} MiB",
        mib(get_rss)
    );
}

/// Reserved bytes per node, from each node's own status.
fn reserved(c: &Cluster) -> Vec<u64> {
    (0..c.nodes.len())
        .map(|i| {
            let out = c.ok(i, &["status", "--json"]);
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            s["node"]["reserved_bytes"].as_u64().unwrap()
        })
        .collect()
}

/// Poll until `done` holds for the reserved bytes, failing after PATIENCE.
fn wait_reserved(c: &Cluster, what: &str, done: impl Fn(&[u64]) -> bool) -> Vec<u64> {
    let start = Instant::now();
    loop {
        let r = reserved(c);
        if done(&r) {
            return r;
        }
        assert!(start.elapsed() < PATIENCE, "{what}: reserved bytes {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn failed_puts_leave_no_reserved_bytes_once_the_ttl_passes() {
    const TTL_SECS: &str = "3";
    let c = Cluster::start_with(3, &["--reservation-ttl-secs", TTL_SECS]);

    // More replicas than nodes: the put fails with a clear error.
    let data = support::random_bytes(1 << 20);
    let out = c.cli_with_stdin(
        0,
        &["put", "-", "--name", "too-many", "--replicas", "4"],
        Some(&data),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("replicas"), "{}", stderr(&out));

    // A client that dies mid-put: it reserved space on every node and
    // never settles. Keep its stdin open so it waits for more data.
    let mut put = c
        .command(0, &["put", "-", "--name", "dies.bin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // More than one segment: the put reserves once it has read the first.
    let mut stdin = put.stdin.take().unwrap();
    stdin.write_all(&support::random_bytes(9 << 20)).unwrap();
    let held = wait_reserved(&c, "the put never reserved", |r| {
        r.iter().filter(|&&b| b > 0).count() >= 3
    });
    put.kill().unwrap();
    put.wait().unwrap();
    drop(stdin);
    eprintln!("reserved while the put ran: {held:?}");

    // After the TTL every node has given the space back.
    wait_reserved(&c, "reservations outlived the TTL", |r| {
        r.iter().all(|&b| b == 0)
    });
    // The nodes still take a new put, which settles what it reserved.
    let out = c.cli_with_stdin(
        0,
        &["put", "-", "--name", "after.bin", "--json"],
        Some(&data),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    wait_reserved(&c, "a good put left reservations", |r| {
        r.iter().all(|&b| b == 0)
    });
}

#[test]
fn many_small_files_fit_in_small_volumes() {
    // Three nodes donating 20 MiB each: 30 files of 100 KiB at R=3 are
    // 9 MiB per node, and every put must find room.
    let c = Cluster::start_configured(3, &[], |config| {
        config.replace("volumes/0:10%", "volumes/0:20MiB")
    });
    for i in 0..c.nodes.len() {
        let out = c.ok(i, &["status", "--json"]);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(s["node"]["donated_bytes"], 20 << 20, "{s}");
    }
    let files: Vec<Vec<u8>> = (0..30).map(|_| support::random_bytes(100 << 10)).collect();
    for (i, data) in files.iter().enumerate() {
        // Half from a file (size known), half from stdin (size learnt).
        let name = format!("small-{i}.bin");
        let out = if i % 2 == 0 {
            let path = c.dir.path().join(&name);
            std::fs::write(&path, data).unwrap();
            let path = path.to_str().unwrap();
            c.cli(i % 3, &["put", path, "--name", &name, "--replicas", "3"])
        } else {
            c.cli_with_stdin(
                i % 3,
                &["put", "-", "--name", &name, "--replicas", "3"],
                Some(data),
            )
        };
        assert!(out.status.success(), "put {name}: {}", stderr(&out));
    }
    for (i, data) in files.iter().enumerate() {
        let name = format!("small-{i}.bin");
        let out = c.ok((i + 1) % 3, &["get", &name, "-"]);
        assert!(out.stdout == *data, "{name} came back different");
    }
}
