//! `ifsnode put FILE|-`: store a file (or stdin) in IFS through the entry
//! node, R replicas per chunk; print where every chunk went.

use anyhow::{Context, bail};
use clap::Args;
use ifs_client::{PutOptions, PutReport, plan::node_name};
use ifs_core::name::{printable, shortened, validate_name};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::progress::{self, Progress};
use crate::stdout::{out, outln};

/// Arguments of `ifsnode put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The file to store, or `-` for stdin
    pub file: String,
    /// Name in your namespace [default: the file's name; required for stdin]
    #[arg(long)]
    pub name: Option<String>,
    /// Replicas per chunk
    #[arg(long, short = 'r', default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// Extra space reserved beyond the estimate, percent
    #[arg(long, value_name = "PCT", default_value_t = 20)]
    pub overprovision: u32,
    /// Print a JSON object: name, size, chunks [{id, nodes}]
    #[arg(long)]
    pub json: bool,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// The name to store under: `--name`, else the file's last path component;
/// either must follow the name rule ([`ifs_core::name`]).
pub fn file_name(file: &str, name: Option<&str>) -> anyhow::Result<String> {
    let name = match name {
        Some(n) => n.to_string(),
        None if file == "-" => bail!("reading stdin: give the file a name with --name NAME"),
        None => {
            let path = PathBuf::from(file);
            let last = path
                .file_name()
                .with_context(|| format!("{file:?} has no file name: use --name NAME"))?;
            last.to_str()
                .with_context(|| format!("{file:?}: the file name is not UTF-8; use --name NAME"))?
                .to_string()
        }
    };
    if let Err(e) = validate_name(&name) {
        bail!("put: bad name \"{}\": {e}", shortened(&name, 60));
    }
    Ok(name)
}

/// The input and its size (when it is a regular file named on the command
/// line), checked before any network work: a directory is refused here, not
/// after reserving space.
fn open_input(file: &str) -> anyhow::Result<(Box<dyn Read + Send>, Option<u64>)> {
    let (input, meta): (Box<dyn Read + Send>, _) = if file == "-" {
        let stdin = std::io::stdin();
        let meta = stdin
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata())
            .context("cannot read stdin")?;
        (Box::new(stdin), meta)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?;
        let meta = f
            .metadata()
            .with_context(|| format!("cannot read {file}"))?;
        (Box::new(f), meta)
    };
    if meta.is_dir() {
        if file == "-" {
            bail!("put: stdin is a directory; redirect one file into it");
        }
        bail!("put: {file} is a directory; put one file or `-` for stdin");
    }
    // Stdin may be read from past its start: its size is no promise.
    let size = (file != "-" && meta.is_file()).then_some(meta.len());
    Ok((input, size))
}

/// Run `ifsnode put`.
pub fn run(global: &GlobalArgs, args: PutArgs) -> anyhow::Result<()> {
    let name = file_name(&args.file, args.name.as_deref())?;
    let (input, size) = open_input(&args.file)?;
    let bar = Progress::start(&format!("put {name}"), size, progress::wanted(args.json));
    let mut opts = PutOptions::new(name.clone());
    opts.replicas = usize::from(args.replicas);
    opts.overprovision_pct = args.overprovision;
    opts.size_hint = size;
    opts.progress = Some(bar.counter());
    let started = std::time::Instant::now();
    let report = with_client(global, &args.peer, async |session, key| {
        ifs_client::put(session, key, input, opts)
            .await
            .with_context(|| format!("put {name} failed"))
    })?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json(&report))?)?;
    } else {
        out!("{}", text(&report, usize::from(args.replicas), secs))?;
    }
    Ok(())
}

/// The `--json` form.
pub fn json(r: &PutReport) -> serde_json::Value {
    serde_json::json!({
        "name": r.name,
        "size": r.size,
        "version": r.version,
        "chunks": r.chunks.iter().map(|c| serde_json::json!({
            "id": c.id.to_hex(),
            "len": c.len,
            "chain": c.chain.iter().map(node_name).collect::<Vec<_>>(),
            "nodes": c.receipts.iter().map(|x| node_name(&x.node)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The human form: a summary, then one line per chunk with its holders.
pub fn text(r: &PutReport, replicas: usize, secs: f64) -> String {
    let mb_s = r.size as f64 / 1e6 / secs.max(1e-9);
    let mut out = format!(
        "put {}: {} bytes, {}, {}, version {} ({:.1} MB/s)\n",
        printable(&r.name),
        r.size,
        crate::cmd::count(r.chunks.len() as u64, "chunk"),
        crate::cmd::count(replicas as u64, "replica"),
        r.version,
        mb_s
    );
    for c in &r.chunks {
        let nodes: Vec<String> = c
            .receipts
            .iter()
            .map(|x| short(&node_name(&x.node)))
            .collect();
        out.push_str(&format!(
            "  chunk {:>4} {}… {:>9} B  on {}\n",
            c.index,
            &c.id.to_hex()[..16],
            c.len,
            nodes.join(", ")
        ));
    }
    out
}

/// A peer id shortened for tables (its tail, which differs between peers).
fn short(peer: &str) -> String {
    let n = peer.len();
    if n > 12 {
        format!("…{}", &peer[n - 10..])
    } else {
        peer.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_defaults_to_the_file_name_and_stdin_needs_one() {
        assert_eq!(file_name("/tmp/a/b.txt", None).unwrap(), "b.txt");
        assert_eq!(file_name("b.txt", Some("x")).unwrap(), "x");
        assert!(file_name("-", None).is_err());
        assert_eq!(file_name("-", Some("in")).unwrap(), "in");
    }

    #[test]
    fn a_bad_name_is_refused_in_one_short_line() {
        let e = file_name("b.txt", Some("")).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = file_name("/tmp/a\u{1b}[2J", None).unwrap_err().to_string();
        assert!(
            e.contains("control character") && !e.contains('\u{1b}'),
            "{e}"
        );
        let e = file_name("-", Some(&"y".repeat(5000)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("5000 bytes") && e.len() < 200, "{e}");
    }
}
