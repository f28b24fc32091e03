//! The README's "Storing files" commands run as written against a devnet:
//! the block is read from README.md, so an edit that breaks a command
//! breaks this test.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The first ```sh block after the heading `heading`.
fn sh_block_after<'a>(text: &'a str, heading: &str) -> &'a str {
    let at = text.find(heading).expect("README has the heading");
    let rest = &text[at..];
    let start = rest.find("```sh\n").expect("an sh block follows") + "```sh\n".len();
    let len = rest[start..].find("\n```").expect("the block ends");
    &rest[start..start + len]
}

#[test]
fn readme_storing_files_commands_run_as_written() {
    let readme = include_str!("../../../README.md");
    let block = sh_block_after(readme, "## Storing files");
    let tmp = tempfile::tempdir().unwrap();
    let dn = tmp.path().join("dn");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let script = format!(
        "set -e -o pipefail\n{}\n",
        block.replace("/tmp/dn", dn.to_str().unwrap())
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ifsnode")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env("PATH", path)
        .env("IFS_HOME", tmp.path().join("home"))
        .env("IFS_DEVNET_BASE_PORT", "0")
        .env_remove("IFS_DATA_DIR")
        .env_remove("IFS_PEER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(300) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The devnet (and, through it, its nodes) stop with the script's group.
    // SAFETY: kill(2) on the process group this test started.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let _ = child.wait();
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let status = status.unwrap_or_else(|| panic!("still running after 300 s: {stdout}\n{stderr}"));
    assert!(
        status.success(),
        "README block failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("got big.iso: 20000000 bytes"), "{stdout}");
    assert!(
        stderr.contains("replaced big.iso (was 19.1 MiB, version 1)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("dir/big.iso"),
        "tar t lists the archive: {stdout}"
    );
    assert!(stdout.contains("removed big.iso"), "{stdout}");
    assert!(stdout.contains("dir.tar"), "ls lists dir.tar: {stdout}");
}
