//! `ifsnode ls [PREFIX] [-r]`: one of the user's folders (its files and
//! subfolders, folders with a trailing `/`), or with `-r` everything below
//! it; `-l` adds the lowest number of live replicas over each file's chunks.

use anyhow::Context;
use clap::Args;
use ifs_client::{ChildKind, FileInfo, LsOptions};
use ifs_core::name::printable;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::stdout::{out, outln};

/// Arguments of `ifsnode ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The folder to list, e.g. `photos/2024` (default: the top folder)
    #[arg(value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Also list every folder below it
    #[arg(short, long)]
    pub recursive: bool,
    /// Count each file's live replicas (one record lookup per file)
    #[arg(short = 'l', long = "replicas")]
    pub replicas: bool,
    /// Print a JSON array: name, kind (file or folder), size, chunks,
    /// min_live_replicas (null without -l), version, readers, modified_ms,
    /// packed (whether a small file is kept in a pack with others)
    #[arg(long)]
    pub json: bool,
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// Run `ifsnode ls`.
pub fn run(global: &GlobalArgs, args: LsArgs) -> anyhow::Result<()> {
    if let Some(p) = args.prefix.as_deref().map(|p| p.trim_end_matches('/'))
        && !p.is_empty()
    {
        ifs_core::name::validate_name(p)
            .with_context(|| format!("cannot list {}", printable(p)))?;
    }
    let opts = LsOptions {
        prefix: args.prefix.clone().unwrap_or_default(),
        recursive: args.recursive,
        replicas: args.replicas,
    };
    let files = with_client(global, &args.peer, "ls", async |session, key| {
        ifs_client::ls(session, key, &opts)
            .await
            .context("ls failed")
    })?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json(&files))?)?;
    } else {
        out!("{}", table(&files))?;
    }
    Ok(())
}

/// The `--json` form.
pub fn json(files: &[FileInfo]) -> serde_json::Value {
    files
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "kind": kind(f.kind),
                "size": f.size,
                "chunks": f.chunks,
                "min_live_replicas": f.min_live_replicas,
                "version": f.version,
                "readers": f.readers.iter().map(|u| u.to_hex()).collect::<Vec<_>>(),
                "modified_ms": f.modified_ms,
                "packed": f.pack.is_some(),
            })
        })
        .collect()
}

fn kind(k: ChildKind) -> &'static str {
    match k {
        ChildKind::File => "file",
        ChildKind::Folder => "folder",
    }
}

/// An aligned table, one file or folder (with a trailing `/`) per line.
pub fn table(files: &[FileInfo]) -> String {
    // Names come from the network: never print their control characters.
    let names: Vec<String> = files
        .iter()
        .map(|f| match f.kind {
            ChildKind::File => printable(&f.name).into_owned(),
            ChildKind::Folder => format!("{}/", printable(&f.name)),
        })
        .collect();
    let w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<w$}  {:>14}  {:>6}  {:>8}  {:>7}\n",
        "NAME", "SIZE", "CHUNKS", "REPLICAS", "SHARED"
    );
    for (f, name) in files.iter().zip(&names) {
        if f.kind == ChildKind::Folder {
            out.push_str(&format!(
                "{name:<w$}  {:>14}  {:>6}  {:>8}  {:>7}\n",
                "-", "-", "-", "-"
            ));
            continue;
        }
        let replicas = f
            .min_live_replicas
            .map_or_else(|| "-".to_string(), |n| n.to_string());
        out.push_str(&format!(
            "{:<w$}  {:>14}  {:>6}  {:>8}  {:>7}\n",
            name,
            f.size,
            f.chunks,
            replicas,
            f.readers.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_shows_a_trailing_slash_and_its_kind() {
        let d = FileInfo {
            name: "photos/2024".into(),
            kind: ChildKind::Folder,
            size: 0,
            chunks: 0,
            min_live_replicas: None,
            version: 1,
            readers: vec![],
            modified_ms: None,
            pack: None,
            props: vec![],
        };
        let t = table(std::slice::from_ref(&d));
        assert!(
            t.lines().nth(1).unwrap().starts_with("photos/2024/ "),
            "{t}"
        );
        let v = json(&[d]);
        assert_eq!(v[0]["kind"], "folder");
        assert_eq!(v[0]["name"], "photos/2024");
        assert!(v[0]["min_live_replicas"].is_null());
    }

    #[test]
    fn json_rows_carry_the_fields_scripts_read() {
        let f = FileInfo {
            name: "a".into(),
            kind: ChildKind::File,
            size: 5,
            chunks: 1,
            min_live_replicas: Some(3),
            version: 1,
            readers: vec![ifs_core::UserId([7; 32])],
            modified_ms: Some(1),
            pack: None,
            props: vec![],
        };
        let v = json(std::slice::from_ref(&f));
        assert_eq!(v[0]["min_live_replicas"], 3);
        assert_eq!(v[0]["size"], 5);
        assert_eq!(v[0]["kind"], "file");
        assert_eq!(v[0]["readers"][0], "07".repeat(32));
        assert!(table(&[f]).lines().nth(1).unwrap().starts_with("a "));
    }

    #[test]
    fn a_name_cannot_drive_the_terminal() {
        let f = FileInfo {
            name: "x\u{1b}]0;owned\u{7}\u{9b}2J".into(),
            kind: ChildKind::File,
            size: 5,
            chunks: 1,
            min_live_replicas: None,
            version: 1,
            readers: vec![],
            modified_ms: None,
            pack: None,
            props: vec![],
        };
        let t = table(&[f]);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains("x\\u{1b}]0;owned\\u{7}\\u{9b}2J"), "{t}");
    }
}
