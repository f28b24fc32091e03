//! `ifsnode get [OWNER/]NAME OUT|-`: fetch a file through the entry node and
//! write it to OUT (replaced only once complete) or stdout. OWNER (a public
//! key or user id) reads a file another user shared with you.

use anyhow::{Context, bail};
use clap::Args;
use ifs_client::GetOptions;
use ifs_core::name::printable;
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::progress::{self, Progress};
use crate::stdout::{Stdout, errln, outln};

/// Arguments of `ifsnode get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The file's name; `OWNER_PUBKEY/NAME` for a file another user shared
    /// with you; with -r, a folder (`/` for the top)
    pub name: String,
    /// Where to write it, or `-` for stdout; an existing file is replaced
    /// only with --force; with -r, the directory to write the folder's files into
    pub out: String,
    /// Get every file below the folder NAME into the directory OUT, in one session
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Replace OUT (with -r: files in it) if it exists
    #[arg(long)]
    pub force: bool,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print the summary as JSON: `name`, `size`, `chunks`, `nodes`,
    /// `seconds`, `mb_per_s` (on stderr when OUT is `-`).
    #[arg(long)]
    pub json: bool,
}

/// What `get` reports once the file is written.
#[derive(Debug, Serialize)]
struct Got {
    name: String,
    size: u64,
    chunks: u64,
    nodes: u64,
    seconds: f64,
    mb_per_s: f64,
}

/// The temp file a get writes before renaming it over `out`.
fn partial_path(out: &std::path::Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".ifs-partial");
    out.with_file_name(name)
}

/// Refuse an output path that cannot take the file, before anything is
/// downloaded: a directory, an existing file without `force`, a missing
/// parent directory.
pub fn check_out(out: &str, name: &str, force: bool) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(out);
    let is_dir = out.ends_with('/') || std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
    if is_dir {
        let base = name
            .rsplit('/')
            .next()
            .filter(|b| !b.is_empty())
            .unwrap_or("NAME");
        bail!(
            "get: {} is a directory; give the file to write, e.g. {}/{}",
            path.display(),
            out.trim_end_matches('/'),
            printable(base)
        );
    }
    if std::fs::symlink_metadata(&path).is_ok() && !force {
        bail!("get: {} exists; pass --force to replace it", path.display());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!(
            "get: cannot write {}: directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(path)
}

/// Run `ifsnode get`.
pub fn run(global: &GlobalArgs, args: GetArgs) -> anyhow::Result<()> {
    if args.recursive {
        return crate::cmd::tree::get(global, args);
    }
    let out_path = if args.out == "-" {
        None
    } else {
        Some(check_out(&args.out, &args.name, args.force)?)
    };
    let to_stdout = args.out == "-";
    let shown = printable(&args.name).into_owned();
    let bar = Progress::start(&format!("get {shown}"), None, progress::wanted(false));
    let opts = GetOptions {
        progress: Some(bar.counter()),
        ..GetOptions::default()
    };
    let started = std::time::Instant::now();
    let (owner, name) = crate::cmd::share::owner_and_name(&args.name);
    let name = name.to_string();
    let report = if to_stdout {
        let out = BufWriter::with_capacity(1 << 20, Stdout::new());
        let (report, mut out) = with_client(global, &args.peer, "get", async |session, key| {
            let got = match crate::cmd::share::resolve_owner(owner, key)? {
                Some(o) => ifs_client::get_from(session, key, &o, &name, out, opts).await,
                None => ifs_client::get(session, key, &name, out, opts).await,
            };
            got.with_context(|| format!("get {} failed", printable(&name)))
        })?;
        out.flush().context("cannot write to stdout")?;
        report
    } else {
        let out_path = out_path.unwrap_or_default();
        let tmp = partial_path(&out_path);
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("get: cannot write {}", out_path.display()))?;
        let file = std::sync::Arc::new(file);
        let result = with_client(global, &args.peer, "get", async |session, key| {
            let owner = crate::cmd::share::resolve_owner(owner, key)?;
            ifs_client::get_to_file(session, key, owner.as_ref(), &name, file.clone(), opts)
                .await
                .with_context(|| format!("get {} failed", printable(&name)))
        });
        let finished = result.and_then(|report| {
            file.sync_all()
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &out_path)
                .with_context(|| format!("cannot rename to {}", out_path.display()))?;
            Ok(report)
        });
        if finished.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        finished?
    };
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    let got = Got {
        name: args.name.clone(),
        size: report.size,
        chunks: report.chunks as u64,
        nodes: report.results.len() as u64,
        seconds: secs,
        mb_per_s: report.size as f64 / 1e6 / secs.max(1e-9),
    };
    let line = if args.json {
        serde_json::to_string_pretty(&got)?
    } else {
        format!(
            "got {}: {} bytes, {} from {} ({:.1} MB/s)",
            shown,
            got.size,
            crate::cmd::count(got.chunks, "chunk"),
            crate::cmd::count(got.nodes, "node"),
            got.mb_per_s
        )
    };
    // With the data on stdout, the summary goes to stderr.
    if to_stdout {
        errln!("{line}");
    } else {
        outln!("{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_path_that_cannot_take_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let e = check_out(d, "docs/a.txt", false).unwrap_err().to_string();
        assert!(e.contains("is a directory") && e.ends_with("/a.txt"), "{e}");
        let e = check_out(&format!("{d}/no/x"), "x", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        let f = format!("{d}/x");
        assert!(check_out(&f, "x", false).is_ok());
        std::fs::write(&f, b"old").unwrap();
        let e = check_out(&f, "x", false).unwrap_err().to_string();
        assert!(e.contains("--force"), "{e}");
        assert!(check_out(&f, "x", true).is_ok());
    }

    #[test]
    fn the_partial_file_sits_beside_the_output() {
        assert_eq!(
            partial_path(std::path::Path::new("/tmp/x/out.bin")),
            PathBuf::from("/tmp/x/out.bin.ifs-partial")
        );
    }
}
