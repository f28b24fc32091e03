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
use crate::stdout::{errln, out, outln};

/// Arguments of `ifsnode put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The file to store, or `-` for stdin (not resumable); with -r, a
    /// directory
    pub file: String,
    /// With -r: the folder to put the directory's files in [default: the
    /// directory's name; `/` for the top folder]. Without -r: the file's
    /// name, as --name gives it
    #[arg(value_name = "PREFIX|NAME", conflicts_with = "name")]
    pub prefix: Option<String>,
    /// Put every file below the directory FILE, as PREFIX/PATH, in one session
    #[arg(long, short = 'r', conflicts_with = "name")]
    pub recursive: bool,
    /// Name in your namespace [default: the file's name; required for stdin]
    #[arg(long)]
    pub name: Option<String>,
    /// Replicas per chunk
    #[arg(long, short = 'R', default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// With -r: files put at once
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Extra space reserved beyond the estimate, percent
    #[arg(long, value_name = "PCT", default_value_t = 20)]
    pub overprovision: u32,
    /// Plaintext bytes per chunk (1KiB..=64MiB): smaller segments mean
    /// more chunks, a larger manifest (paged past 112 chunks) and more
    /// per-chunk overhead
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_segment)]
    pub segment_size: u64,
    /// Start over instead of resuming a cut put of the same file (a put of
    /// a file, not stdin, saves its progress beside the user key and
    /// resumes from it when run again)
    #[arg(long)]
    pub no_resume: bool,
    /// Print a JSON object: name, size, version, replaced, chunks [{id, len, chain, nodes}]
    /// (with -r: files [{name, path, size, version, chunks, replaced, done_ms, error}],
    /// files_ok, files_failed, bytes, seconds)
    #[arg(long)]
    pub json: bool,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// `--segment-size`: a size with an optional binary unit, 1 KiB to the
/// codec's largest segment.
fn parse_segment(s: &str) -> Result<u64, String> {
    let n = crate::cmd::local_roundtrip::parse_size(s)?;
    let max = ifs_core::codec::MAX_SEGMENT_SIZE as u64;
    if !(1024..=max).contains(&n) {
        return Err(format!("{s} is outside 1KiB..={}MiB", max >> 20));
    }
    Ok(n)
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

/// Where a put of `file` as `name` keeps its progress: under the user
/// key's directory, named by the name and the source's identity (path,
/// size, modification time), so a changed file never resumes an upload
/// of its old bytes.
fn state_path(file: &str, name: &str, size: u64) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let meta = std::fs::metadata(file).with_context(|| format!("cannot read {file}"))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| PathBuf::from(file));
    let mut h = blake3::Hasher::new();
    for part in [
        name.as_bytes(),
        path.as_os_str().as_encoded_bytes(),
        &size.to_le_bytes(),
        &mtime.to_le_bytes(),
    ] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let dir = crate::cmd::key::ifs_home()?.join("uploads");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join(format!("{}.put", &h.finalize().to_hex()[..32])))
}

/// Run `ifsnode put`.
pub fn run(global: &GlobalArgs, args: PutArgs) -> anyhow::Result<()> {
    if args.recursive {
        return crate::cmd::tree::put(global, args);
    }
    let name = file_name(&args.file, args.name.as_deref().or(args.prefix.as_deref()))?;
    let (input, size) = open_input(&args.file)?;
    let bar = Progress::start(&format!("put {name}"), size, progress::wanted(args.json));
    let mut opts = PutOptions::new(name.clone());
    opts.replicas = usize::from(args.replicas);
    opts.overprovision_pct = args.overprovision;
    opts.codec = ifs_core::codec::CodecParams::with_segment_size(args.segment_size as usize);
    opts.size_hint = size;
    opts.progress = Some(bar.counter());
    let started = std::time::Instant::now();
    let state = match size {
        Some(size) if !args.no_resume => Some(state_path(&args.file, &name, size)?),
        _ => None,
    };
    let report = with_client(global, &args.peer, "put", async |session, key| {
        let put = async {
            match (&state, size) {
                (Some(state), Some(size)) => {
                    let file = std::fs::File::open(&args.file)?;
                    let said = |r: ifs_client::Resumed| {
                        errln!(
                            "resuming: {} of {} chunks already stored",
                            r.stored,
                            r.chunks
                        );
                    };
                    Ok(ifs_client::put_file(session, key, file, size, opts, state, said).await?)
                }
                _ => Ok::<_, anyhow::Error>(ifs_client::put(session, key, input, opts).await?),
            }
        };
        put.await.with_context(|| format!("put {name} failed"))
    })?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    if let Some(old) = report.replaced {
        errln!(
            "replaced {} (was {}, version {})",
            printable(&name),
            crate::human::bytes(old.size),
            old.version
        );
    }
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
        "replaced": r.replaced.map(|o| serde_json::json!({"size": o.size, "version": o.version})),
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
            .map(|x| crate::human::short_peer(&node_name(&x.node)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of the `--json` object, in the order README and `--help` list them.
    const JSON_KEYS: [&str; 5] = ["name", "size", "version", "replaced", "chunks"];
    /// The keys of each chunk in `--json`.
    const JSON_CHUNK_KEYS: [&str; 4] = ["id", "len", "chain", "nodes"];
    /// How README and `--help` describe the `--json` object.
    const JSON_SHAPE: &str = "name, size, version, replaced, chunks [{id, len, chain, nodes}]";

    #[test]
    fn json_fields_agree_with_help_and_readme() {
        let key = ifs_core::keys::NodeKey::generate(&mut rand::rng());
        let report = PutReport {
            name: "a".into(),
            version: 2,
            size: 5,
            chunks: vec![ifs_client::PlacedChunk {
                index: 0,
                id: ifs_core::ChunkId([1; 32]),
                len: 40,
                plain_len: 5,
                receipts: vec![],
                chain: vec![key.node_id()],
                last: true,
                placed_ms: 0,
            }],
            replaced: Some(ifs_client::Replaced {
                size: 3,
                version: 1,
            }),
        };
        let v = json(&report);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = JSON_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want, "serde_json sorts keys");
        let chunk: Vec<&str> = v["chunks"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = JSON_CHUNK_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(chunk, want);
        assert_eq!(v["replaced"]["size"], 3);
        let shape = format!(
            "{}, chunks [{{{}}}]",
            JSON_KEYS[..4].join(", "),
            JSON_CHUNK_KEYS.join(", ")
        );
        assert_eq!(shape, JSON_SHAPE);
        use clap::CommandFactory;
        let cli = crate::cmd::Cli::command();
        let put = cli.find_subcommand("put").unwrap();
        let help = put
            .get_arguments()
            .find(|a| a.get_id() == "json")
            .and_then(|a| a.get_help())
            .unwrap()
            .to_string();
        assert!(help.contains(JSON_SHAPE), "--help: {help}");
        let readme = include_str!("../../../README.md");
        assert!(readme.contains(JSON_SHAPE), "README lacks {JSON_SHAPE}");
    }

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
