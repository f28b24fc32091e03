//! `ifsnode peers`: every node the entry node knows, as a table for people
//! or a JSON array of rows for scripts. Also `ask`, the one-request helper
//! `status` and `donate` share.

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_session;
use crate::stdout::{out, outln};
use anyhow::bail;
use clap::Args;
use ifs_core::proto::{CtlRequest, CtlResponse, PeerRow};
use multiaddr::Multiaddr;
use std::time::Duration;

/// How to reach the entry node; shared by the commands that talk to one.
#[derive(Debug, Args, Clone)]
pub struct PeerArgs {
    /// The node to ask [default: $IFS_PEER, else DIR/node.addr]
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Option<Multiaddr>,
    /// Seconds to wait for the node to answer
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
}

/// Arguments of `ifsnode peers`.
#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print a JSON array with one object per node
    #[arg(long)]
    pub json: bool,
}

/// Connect to the entry node, send `req`, return the answer; the answer
/// within `--timeout` too.
pub fn ask(global: &GlobalArgs, args: &PeerArgs, req: CtlRequest) -> anyhow::Result<CtlResponse> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    with_session(global, args, async |session| {
        match tokio::time::timeout(timeout, session.request(&req)).await {
            Ok(r) => Ok(r?),
            Err(_) => bail!("no answer within {timeout:?}"),
        }
    })
}

/// Run `ifsnode peers`.
pub fn run(global: &GlobalArgs, args: PeersArgs) -> anyhow::Result<()> {
    let rows = match ask(global, &args.peer, CtlRequest::Peers)? {
        CtlResponse::Peers(rows) => rows,
        other => bail!("unexpected answer to a peers request: {other:?}"),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        out!("{}", table(&rows))?;
    }
    Ok(())
}

/// The rows as an aligned text table, the answering node first (marked `*`).
pub fn table(rows: &[PeerRow]) -> String {
    let mut lines = vec![[
        "PEER".to_string(),
        "STATE".into(),
        "RTT".into(),
        "HOPS".into(),
        "FREE".into(),
        "DONATED".into(),
        "NEED".into(),
        "SEQ".into(),
        "AGE".into(),
    ]];
    for r in rows {
        lines.push([
            format!(
                "{}{}",
                short_id(&r.peer_id),
                if r.is_self { "*" } else { "" }
            ),
            r.state.clone(),
            r.rtt_ms.map_or("-".into(), |v| format!("{v:.1}ms")),
            r.hops.map_or("-".into(), |h| h.to_string()),
            human_bytes(r.free_bytes),
            human_bytes(r.donated_bytes),
            format!("{}%", r.owner_need_pct),
            r.seq.to_string(),
            format!("{}s", r.report_age_s),
        ]);
    }
    let mut widths = [0usize; 9];
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The last 8 characters of a peer id: enough to tell nodes apart by eye
/// (the leading `12D3KooW` is the same for every ed25519 key).
pub fn short_id(peer_id: &str) -> String {
    let n = peer_id.chars().count();
    peer_id.chars().skip(n.saturating_sub(8)).collect()
}

/// `1.5 GiB`-style sizes for people.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, is_self: bool) -> PeerRow {
        PeerRow {
            peer_id: id.into(),
            state: "alive".into(),
            addrs: vec![],
            donated_bytes: 3 << 30,
            used_bytes: 0,
            reserved_bytes: 0,
            free_bytes: 1536 << 20,
            owner_need_pct: 12,
            rtt_ms: if is_self { Some(0.0) } else { None },
            hops: Some(0),
            report_age_s: 4,
            seq: 17,
            reputation: 1.0,
            is_self,
        }
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(3 << 40), "3.0 TiB");
    }

    #[test]
    fn table_marks_self_and_missing_measurements() {
        let t = table(&[
            row("12D3KooWAAAAAAAAself0001", true),
            row("12D3KooWBBBBBBBBpeer0002", false),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("PEER"), "{t}");
        assert!(lines[1].starts_with("self0001*"), "{t}");
        assert!(
            lines[1].contains("0.0ms") && lines[1].contains("1.5 GiB"),
            "{t}"
        );
        assert!(lines[2].contains(" - "), "unmeasured RTT shows as '-': {t}");
    }
}
