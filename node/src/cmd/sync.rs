//! `ifsnode sync DIR [PREFIX]`: make the folder PREFIX hold DIR's files,
//! in one direction (local → IFS). Files IFS already holds byte for byte
//! are skipped (an exact check: see `ifs_client::sync_tree`), new and
//! changed ones are put as `put -r` puts them; with `--delete`, files
//! below PREFIX that DIR no longer has are removed.

use anyhow::{Context, bail};
use clap::Args;
use ifs_client::{SyncOptions, SyncReport, TreeOptions};
use ifs_core::name::printable;
use std::path::PathBuf;
use std::time::Instant;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::cmd::tree::{target_prefix, tree_json, walk};
use crate::progress::{self, Progress};
use crate::stdout::{errln, outln};

/// Arguments of `ifsnode sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The local directory to sync from
    pub dir: PathBuf,
    /// The folder to sync into [default: the directory's name; `/` for the
    /// top folder]
    #[arg(value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Also remove files below PREFIX that DIR no longer has
    #[arg(long)]
    pub delete: bool,
    /// Replicas per chunk of the files put
    #[arg(long, short = 'R', default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// Files put at once
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Extra space reserved beyond the estimate, percent
    #[arg(long, value_name = "PCT", default_value_t = 20)]
    pub overprovision: u32,
    /// Print a JSON object: uploaded [{name, path, size, version, chunks,
    /// replaced, done_ms, error}], files_uploaded, bytes_uploaded,
    /// skipped [{name, size}], files_skipped, bytes_skipped, deleted,
    /// delete_failed [{name, error}], files_failed, seconds
    #[arg(long)]
    pub json: bool,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// Run `ifsnode sync DIR [PREFIX]`.
pub fn run(global: &GlobalArgs, args: SyncArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone();
    if !dir.is_dir() {
        bail!("sync: {} is not a directory", dir.display());
    }
    let prefix = target_prefix("sync", &dir, args.prefix.as_deref())?;
    let files = walk(&dir, &prefix)?;
    let (count, bytes) = (files.len() as u64, files.iter().map(|f| f.size).sum());
    let opts = SyncOptions {
        tree: TreeOptions {
            replicas: usize::from(args.replicas),
            overprovision_pct: args.overprovision,
            files_in_flight: usize::from(args.jobs),
            ..TreeOptions::default()
        },
        delete: args.delete,
    };
    let bar = Progress::start_files(
        &format!("sync {}", dir.display()),
        Some(bytes),
        (opts.tree.progress.files.clone(), count),
        opts.tree.progress.bytes.clone(),
        progress::wanted(args.json),
    );
    let started = Instant::now();
    let report = with_client(global, &args.peer, "sync", async |session, key| {
        ifs_client::sync_tree(session, key, files, &prefix, &opts)
            .await
            .with_context(|| format!("sync {} failed", dir.display()))
    })?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    print(&dir, &prefix, &report, secs, args.json)
}

/// Bytes of the files put.
fn uploaded_bytes(r: &SyncReport) -> u64 {
    r.uploaded
        .files
        .iter()
        .filter(|f| f.error.is_none())
        .map(|f| f.size)
        .sum()
}

/// Print the summary (or JSON); fail when a file could not be put or
/// removed.
fn print(
    dir: &std::path::Path,
    prefix: &str,
    r: &SyncReport,
    secs: f64,
    json: bool,
) -> anyhow::Result<()> {
    let failed: Vec<_> = r.uploaded.failures().collect();
    let put = r.uploaded.files.len() - failed.len();
    let skipped_bytes: u64 = r.skipped.iter().map(|(_, s)| s).sum();
    if json {
        outln!("{}", serde_json::to_string_pretty(&sync_json(r, secs))?)?;
    } else {
        outln!(
            "sync {} -> {}: uploaded {} ({} bytes), skipped {} unchanged ({} bytes){} in {secs:.1} s{}",
            dir.display(),
            if prefix.is_empty() {
                "/".to_string()
            } else {
                printable(prefix).to_string()
            },
            crate::cmd::count(put as u64, "file"),
            uploaded_bytes(r),
            crate::cmd::count(r.skipped.len() as u64, "file"),
            skipped_bytes,
            if r.deleted.is_empty() {
                String::new()
            } else {
                format!(
                    ", deleted {}",
                    crate::cmd::count(r.deleted.len() as u64, "file")
                )
            },
            if failed.is_empty() && r.delete_failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed", failed.len() + r.delete_failed.len())
            }
        )?;
    }
    for f in &failed {
        errln!(
            "sync: {} failed: {}",
            printable(&f.name),
            f.error.as_deref().unwrap_or("")
        );
    }
    for (name, e) in &r.delete_failed {
        errln!("sync: removing {} failed: {e}", printable(name));
    }
    let failures = failed.len() + r.delete_failed.len();
    if failures > 0 {
        bail!("sync: {failures} of the changes failed");
    }
    Ok(())
}

/// The `--json` form of a sync.
fn sync_json(r: &SyncReport, secs: f64) -> serde_json::Value {
    let tree = tree_json(&r.uploaded, secs);
    serde_json::json!({
        "uploaded": tree["files"],
        "files_uploaded": tree["files_ok"],
        "bytes_uploaded": uploaded_bytes(r),
        "skipped": r.skipped.iter().map(|(n, s)| serde_json::json!({"name": n, "size": s})).collect::<Vec<_>>(),
        "files_skipped": r.skipped.len(),
        "bytes_skipped": r.skipped.iter().map(|(_, s)| s).sum::<u64>(),
        "deleted": r.deleted,
        "delete_failed": r.delete_failed.iter().map(|(n, e)| serde_json::json!({"name": n, "error": e})).collect::<Vec<_>>(),
        "files_failed": tree["files_failed"],
        "seconds": secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ifs_client::{FileOutcome, TreeReport};

    #[test]
    fn the_json_summary_counts_what_was_put_skipped_and_removed() {
        let row = |name: &str, size, error: Option<&str>| FileOutcome {
            name: name.into(),
            path: format!("/tmp/{name}").into(),
            size,
            done_ms: 1,
            version: 2,
            chunks: 1,
            replaced: None,
            error: error.map(str::to_string),
        };
        let r = SyncReport {
            uploaded: TreeReport {
                files: vec![row("d/new", 10, None), row("d/bad", 7, Some("no nodes"))],
            },
            skipped: vec![("d/same".into(), 100)],
            deleted: vec!["d/gone".into()],
            delete_failed: vec![],
        };
        let v = sync_json(&r, 2.0);
        assert_eq!(v["files_uploaded"], 1);
        assert_eq!(v["bytes_uploaded"], 10);
        assert_eq!(v["files_skipped"], 1);
        assert_eq!(v["bytes_skipped"], 100);
        assert_eq!(v["files_failed"], 1);
        assert_eq!(v["deleted"][0], "d/gone");
        assert_eq!(v["uploaded"].as_array().unwrap().len(), 2);
    }
}
