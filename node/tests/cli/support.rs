//! Helpers: run the real `ifsnode` binary and look at what it did.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// What a user sees from one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Run `ifsnode ARGS` with a clean environment for the variables it reads.
pub fn ifsnode(args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_ifsnode"))
        .args(args)
        .env_remove("IFS_DATA_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run ifsnode")
        .into()
}

/// Run `ifsnode init --data-dir DIR EXTRA...`.
pub fn init(dir: &Path, extra: &[&str]) -> Run {
    let d = dir.to_str().unwrap();
    let mut args = vec!["init", "--data-dir", d];
    args.extend_from_slice(extra);
    ifsnode(&args)
}

/// Names of the entries of `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Whether this process ignores permission bits (root, or CAP_DAC_OVERRIDE).
pub fn permission_bits_bind_us() -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let bound = std::fs::write(dir.path().join("probe"), b"x").is_err();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    bound
}

/// Assert a failed run: exit 1 and one `ifsnode: error:` line containing every needle.
#[track_caller]
pub fn assert_fails_with(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, 1, "exit code; stderr: {}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("ifsnode: error:"))
        .unwrap_or_else(|| panic!("no error line in stderr: {}", run.stderr));
    for n in needles {
        assert!(line.contains(n), "error line {line:?} lacks {n:?}");
    }
}
