//! `ifsnode put -r DIR [PREFIX]` and `ifsnode get -r PREFIX DIR`: a whole
//! directory in one session, with progress for the tree (files and bytes).

use anyhow::{Context, bail};
use ifs_client::{FileOutcome, TreeFile, TreeOptions, TreeReport};
use ifs_core::name::{printable, shortened, validate_name};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cmd::GlobalArgs;
use crate::cmd::get::GetArgs;
use crate::cmd::key::with_client;
use crate::cmd::put::PutArgs;
use crate::progress::{self, Progress};
use crate::stdout::{errln, outln};

/// The folder the files of `dir` go in: PREFIX (`/` is the top folder),
/// else the directory's own name. `what` names the command in errors.
pub fn target_prefix(what: &str, dir: &Path, prefix: Option<&str>) -> anyhow::Result<String> {
    let p = match prefix {
        Some(p) => p.trim_matches('/').to_string(),
        None => {
            let abs = std::path::absolute(dir)
                .with_context(|| format!("bad directory {}", dir.display()))?;
            let last = abs.components().next_back().map(|c| c.as_os_str());
            last.and_then(|s| s.to_str())
                .filter(|s| *s != "/")
                .with_context(|| {
                    format!(
                        "{}: give the folder to put it in: {what} DIR PREFIX",
                        dir.display()
                    )
                })?
                .to_string()
        }
    };
    if !p.is_empty()
        && let Err(e) = validate_name(&p)
    {
        bail!("{what}: bad folder \"{}\": {e}", shortened(&p, 60));
    }
    Ok(p)
}

/// Every regular file below `dir` as (path, name under `prefix`, size),
/// sorted by name. Symbolic links and special files are skipped with a
/// warning; a name that breaks the name rule refuses the whole tree.
pub fn walk(dir: &Path, prefix: &str) -> anyhow::Result<Vec<TreeFile>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), prefix.to_string())];
    while let Some((path, name)) = stack.pop() {
        let entries =
            std::fs::read_dir(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", path.display()))?;
            let p = entry.path();
            let file_name = entry.file_name();
            let Some(seg) = file_name.to_str() else {
                bail!("put -r: {}: the file name is not UTF-8", p.display());
            };
            let child = if name.is_empty() {
                seg.to_string()
            } else {
                format!("{name}/{seg}")
            };
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", p.display()))?;
            if kind.is_dir() {
                stack.push((p, child));
            } else if kind.is_file() {
                if let Err(e) = validate_name(&child) {
                    bail!(
                        "put -r: {}: bad name \"{}\": {e}",
                        p.display(),
                        shortened(&child, 60)
                    );
                }
                let size = entry
                    .metadata()
                    .with_context(|| format!("cannot read {}", p.display()))?
                    .len();
                out.push(TreeFile {
                    path: p,
                    name: child,
                    size,
                });
            } else {
                errln!("put -r: skipped {} (not a regular file)", p.display());
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Run `ifsnode put -r DIR [PREFIX]`.
pub fn put(global: &GlobalArgs, args: PutArgs) -> anyhow::Result<()> {
    let dir = PathBuf::from(&args.file);
    if !dir.is_dir() {
        bail!(
            "put -r: {} is not a directory (--replicas N sets the replicas)",
            dir.display()
        );
    }
    let prefix = target_prefix("put -r", &dir, args.prefix.as_deref())?;
    let files = walk(&dir, &prefix)?;
    let (count, bytes) = (files.len() as u64, files.iter().map(|f| f.size).sum());
    let opts = TreeOptions {
        replicas: usize::from(args.replicas),
        overprovision_pct: args.overprovision,
        files_in_flight: usize::from(args.jobs),
        ..TreeOptions::default()
    };
    let bar = Progress::start_files(
        &format!("put -r {}", dir.display()),
        Some(bytes),
        (opts.progress.files.clone(), count),
        opts.progress.bytes.clone(),
        progress::wanted(args.json),
    );
    let started = Instant::now();
    let report = with_client(global, &args.peer, "put", async |session, key| {
        ifs_client::put_tree(session, key, files, &opts)
            .await
            .with_context(|| format!("put -r {} failed", dir.display()))
    })?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    for f in &report.files {
        if let Some(old) = f.replaced {
            errln!(
                "replaced {} (was {}, version {})",
                printable(&f.name),
                crate::human::bytes(old.size),
                old.version
            );
        }
    }
    finish("put -r", &dir, &report, secs, args.json, bytes)
}

/// Run `ifsnode get -r PREFIX DIR`.
pub fn get(global: &GlobalArgs, args: GetArgs) -> anyhow::Result<()> {
    let prefix = args.name.trim_matches('/').to_string();
    if !prefix.is_empty() {
        validate_name(&prefix).with_context(|| format!("cannot get {}", printable(&prefix)))?;
    }
    let dir = PathBuf::from(&args.out);
    if args.out == "-" {
        bail!("get -r: give a directory to write the files into, not -");
    }
    if dir.exists() && !dir.is_dir() {
        bail!("get -r: {} exists and is not a directory", dir.display());
    }
    let opts = TreeOptions {
        overwrite: args.force,
        ..TreeOptions::default()
    };
    let bar = Progress::start_files(
        &format!("get -r {}", printable(&prefix)),
        None,
        (opts.progress.files.clone(), 0),
        opts.progress.bytes.clone(),
        progress::wanted(args.json),
    );
    let started = Instant::now();
    let report = with_client(global, &args.peer, "get", async |session, key| {
        ifs_client::get_tree(session, key, &prefix, &dir, &opts)
            .await
            .map_err(|e| match e {
                ifs_client::GetError::Local { path, source }
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    anyhow::anyhow!("get -r: {path} exists; pass --force to replace it")
                }
                e => anyhow::Error::new(e).context(format!("get -r {} failed", printable(&prefix))),
            })
    })?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    let total = report.files.iter().map(|f| f.size).sum();
    finish("get -r", &dir, &report, secs, args.json, total)
}

/// Print the report (JSON or a summary) and fail when a file failed.
fn finish(
    what: &str,
    dir: &Path,
    report: &TreeReport,
    secs: f64,
    json: bool,
    bytes: u64,
) -> anyhow::Result<()> {
    let failed: Vec<&FileOutcome> = report.failures().collect();
    let ok = report.files.len() - failed.len();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&tree_json(report, secs))?
        )?;
    } else {
        outln!(
            "{what} {}: {} ({} bytes) in {secs:.1} s: {:.1} files/s, {:.1} MB/s{}",
            dir.display(),
            crate::cmd::count(ok as u64, "file"),
            bytes,
            ok as f64 / secs.max(1e-9),
            bytes as f64 / 1e6 / secs.max(1e-9),
            if failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed", failed.len())
            }
        )?;
    }
    for f in &failed {
        errln!(
            "{what}: {} failed: {}",
            printable(&f.name),
            f.error.as_deref().unwrap_or("")
        );
    }
    if let Some(first) = failed.first() {
        bail!(
            "{what}: {} of {} failed; the first: {}: {}",
            failed.len(),
            crate::cmd::count(report.files.len() as u64, "file"),
            printable(&first.name),
            first.error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// The `--json` form of a tree operation.
pub fn tree_json(r: &TreeReport, secs: f64) -> serde_json::Value {
    let failed = r.failures().count();
    serde_json::json!({
        "files": r.files.iter().map(|f| serde_json::json!({
            "name": f.name,
            "path": f.path.display().to_string(),
            "size": f.size,
            "version": f.version,
            "chunks": f.chunks,
            "replaced": f.replaced.map(|o| serde_json::json!({"size": o.size, "version": o.version})),
            "done_ms": f.done_ms,
            "error": f.error,
        })).collect::<Vec<_>>(),
        "files_ok": r.files.len() - failed,
        "files_failed": failed,
        "bytes": r.files.iter().filter(|f| f.error.is_none()).map(|f| f.size).sum::<u64>(),
        "seconds": secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_named_under_its_prefix_and_bad_names_refuse_it() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("photos");
        std::fs::create_dir_all(root.join("2024/x")).unwrap();
        std::fs::write(root.join("a.jpg"), b"a").unwrap();
        std::fs::write(root.join("2024/x/b.jpg"), b"bb").unwrap();
        std::os::unix::fs::symlink(root.join("a.jpg"), root.join("link")).unwrap();
        assert_eq!(target_prefix("put -r", &root, None).unwrap(), "photos");
        assert_eq!(target_prefix("put -r", &root, Some("/")).unwrap(), "");
        assert_eq!(target_prefix("put -r", &root, Some("x/y/")).unwrap(), "x/y");
        assert!(target_prefix("sync", &root, Some("a/../b")).is_err());
        let files = walk(&root, "photos").unwrap();
        let names: Vec<(&str, u64)> = files.iter().map(|f| (f.name.as_str(), f.size)).collect();
        assert_eq!(names, vec![("photos/2024/x/b.jpg", 2), ("photos/a.jpg", 1)]);
        let top = walk(&root, "").unwrap();
        assert_eq!(top[1].name, "a.jpg");
        std::fs::write(root.join("bad\u{1b}name"), b"x").unwrap();
        let e = walk(&root, "photos").unwrap_err().to_string();
        assert!(e.contains("control character"), "{e}");
    }

    #[test]
    fn json_rows_carry_the_completion_time() {
        let r = TreeReport {
            files: vec![FileOutcome {
                name: "d/a".into(),
                path: "/tmp/d/a".into(),
                size: 3,
                done_ms: 12,
                version: 1,
                chunks: 1,
                replaced: None,
                error: None,
            }],
        };
        let v = tree_json(&r, 1.5);
        assert_eq!(v["files"][0]["done_ms"], 12);
        assert_eq!(v["files_ok"], 1);
        assert_eq!(v["files_failed"], 0);
        assert_eq!(v["bytes"], 3);
        assert!(v["files"][0]["error"].is_null());
    }
}
