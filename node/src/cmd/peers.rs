//! `ifsnode peers`: every node the entry node knows, as a table for people
//! or a JSON array of rows for scripts. Also `ask`, the one-request helper
//! `status` and `donate` share.

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_session;
use crate::human;
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
    /// Seconds the whole command may take, connecting included [default: 10
    /// for peers, status, donate and leave; none for put, get, ls, rm, share
    /// and revoke, which connect within 10 s and then take as long as the
    /// data needs]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub timeout: Option<u64>,
}

/// Longest `--timeout`: a year.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// Deadline of the commands that only ask the node a question.
pub const QUERY_TIMEOUT_SECS: u64 = 10;

impl PeerArgs {
    /// The deadline of `command`: `--timeout`, else 10 s for a question to
    /// the node, else none (a put or get of a large file takes as long as
    /// it takes).
    pub fn deadline(&self, command: &str) -> Option<Duration> {
        let default = matches!(command, "peers" | "status" | "donate" | "leave")
            .then_some(QUERY_TIMEOUT_SECS);
        self.timeout.or(default).map(Duration::from_secs)
    }
}

/// Arguments of `ifsnode peers`.
#[derive(Debug, Args)]
#[command(after_long_help = COLUMNS_HELP)]
pub struct PeersArgs {
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print a JSON array with one object per node
    #[arg(long)]
    pub json: bool,
}

/// Connect to the entry node, send `req`, return the answer, all within
/// `command`'s deadline.
pub fn ask(
    global: &GlobalArgs,
    args: &PeerArgs,
    command: &str,
    req: CtlRequest,
) -> anyhow::Result<CtlResponse> {
    with_session(global, args, command, async |session| {
        Ok(session.request(&req).await?)
    })
}

/// Run `ifsnode peers`.
pub fn run(global: &GlobalArgs, args: PeersArgs) -> anyhow::Result<()> {
    let rows = match ask(global, &args.peer, "peers", CtlRequest::Peers)? {
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

/// What the human table's columns mean; `peers --help` and the table's
/// footer say it too.
pub const COLUMNS_HELP: &str = "\
Columns:
  PEER      the last 8 characters of the node's peer id (`put` names holders the same
            way; --json has the whole id); * marks the node that answered
  STATE     alive; unreachable (its connection closed and a redial failed); suspect or
            dead (it missed that many capacity reports)
  RTT HOPS  round trip and IP hops from the answering node
  FREE USED RESERVED DONATED
            the node's donation: still free, holding chunks, promised to puts under
            way, and in all
  OWNER%    how full its disks are with its owner's own files (the owner's need wins
            over the donation)
  AGE       seconds since its last capacity report";

/// The rows as an aligned text table, the answering node first (marked
/// `*`, explained in a footer line).
pub fn table(rows: &[PeerRow]) -> String {
    let mut lines = vec![
        [
            "PEER", "STATE", "RTT", "HOPS", "FREE", "USED", "RESERVED", "DONATED", "OWNER%", "AGE",
        ]
        .map(String::from),
    ];
    for r in rows {
        lines.push([
            format!(
                "{}{}",
                human::short_peer(&r.peer_id),
                if r.is_self { "*" } else { "" }
            ),
            r.state.clone(),
            r.rtt_ms.map_or("-".into(), |v| format!("{v:.1}ms")),
            r.hops.map_or("-".into(), |h| h.to_string()),
            human::bytes(r.free_bytes),
            human::bytes(r.used_bytes),
            human::bytes(r.reserved_bytes),
            human::bytes(r.donated_bytes),
            format!("{}%", r.owner_need_pct),
            format!("{}s", r.report_age_s),
        ]);
    }
    let mut widths = [0usize; 10];
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
    out.push_str(
        "* the node that answered; OWNER%: share of its disks its owner's files fill \
         (ifsnode peers --help explains every column)\n",
    );
    out
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
            up_bps: 0,
            down_bps: 0,
        }
    }

    #[test]
    fn table_marks_self_and_missing_measurements() {
        let t = table(&[
            row("12D3KooWAAAAAAAAself0001", true),
            row("12D3KooWBBBBBBBBpeer0002", false),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("PEER"), "{t}");
        for gone in ["SEQ", "NEED"] {
            assert!(!lines[0].contains(gone), "{t}");
        }
        for col in ["USED", "RESERVED", "OWNER%"] {
            assert!(lines[0].contains(col), "{t}");
        }
        assert!(lines[3].starts_with("* the node that answered"), "{t}");
        assert!(lines[1].starts_with("self0001*"), "{t}");
        assert!(
            lines[1].contains("0.0ms") && lines[1].contains("1.5 GiB"),
            "{t}"
        );
        assert!(lines[2].contains(" - "), "unmeasured RTT shows as '-': {t}");
    }
}
