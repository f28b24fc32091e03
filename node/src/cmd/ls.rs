//! `ifsnode ls`: the user's files with size, chunks and the lowest number
//! of live replicas over their chunks.

use anyhow::Context;
use clap::Args;
use ifs_client::FileInfo;
use ifs_core::name::printable;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::stdout::{out, outln};

/// Arguments of `ifsnode ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print a JSON array: name, size, chunks, min_live_replicas, version, readers
    #[arg(long)]
    pub json: bool,
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// Run `ifsnode ls`.
pub fn run(global: &GlobalArgs, args: LsArgs) -> anyhow::Result<()> {
    let files = with_client(global, &args.peer, "ls", async |session, key| {
        ifs_client::ls(session, key).await.context("ls failed")
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
                "size": f.size,
                "chunks": f.chunks,
                "min_live_replicas": f.min_live_replicas,
                "version": f.version,
                "readers": f.readers.iter().map(|u| u.to_hex()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// An aligned table, one file per line.
pub fn table(files: &[FileInfo]) -> String {
    // Names come from the network: never print their control characters.
    let names: Vec<_> = files.iter().map(|f| printable(&f.name)).collect();
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
        out.push_str(&format!(
            "{:<w$}  {:>14}  {:>6}  {:>8}  {:>7}\n",
            name,
            f.size,
            f.chunks,
            f.min_live_replicas,
            f.readers.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_carry_the_fields_scripts_read() {
        let f = FileInfo {
            name: "a".into(),
            size: 5,
            chunks: 1,
            min_live_replicas: 3,
            version: 1,
            readers: vec![ifs_core::UserId([7; 32])],
        };
        let v = json(std::slice::from_ref(&f));
        assert_eq!(v[0]["min_live_replicas"], 3);
        assert_eq!(v[0]["size"], 5);
        assert_eq!(v[0]["readers"][0], "07".repeat(32));
        assert!(table(&[f]).lines().nth(1).unwrap().starts_with("a "));
    }

    #[test]
    fn a_name_cannot_drive_the_terminal() {
        let f = FileInfo {
            name: "x\u{1b}]0;owned\u{7}\u{9b}2J".into(),
            size: 5,
            chunks: 1,
            min_live_replicas: 3,
            version: 1,
            readers: vec![],
        };
        let t = table(&[f]);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains("x\\u{1b}]0;owned\\u{7}\\u{9b}2J"), "{t}");
    }
}
