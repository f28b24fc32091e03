//! An error as the one line `ifsnode: error: …` prints: the context chain
//! joined with `: `, each cause once, line breaks folded.
//!
//! Library errors often quote their source in their own text as well as
//! returning it as `source()` (redb's "Database already open" arrives
//! twice that way), and libp2p's dial errors list one address per line.

/// The whole chain of `e` on one line, without a cause whose text the
/// message before it already holds.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = fold_lines(&cause.to_string());
        if text.is_empty() {
            continue;
        }
        if parts.last().is_some_and(|prev| prev.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Lines trimmed and joined with one space.
fn fold_lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[derive(Debug, thiserror::Error)]
    #[error("store: {0}")]
    struct Wrapper(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("Database already open. Cannot acquire lock.")]
    struct Inner;

    #[test]
    fn a_cause_quoted_by_its_wrapper_is_printed_once() {
        let e = Err::<(), _>(Wrapper(Inner))
            .context("cannot start the node in /d")
            .unwrap_err();
        let line = one_line(&e);
        assert_eq!(
            line,
            "cannot start the node in /d: store: Database already open. Cannot acquire lock."
        );
    }

    #[test]
    fn a_multi_line_cause_becomes_one_line() {
        let e = anyhow::anyhow!(
            "dial failed: [\n  (/ip4/1.2.3.4/tcp/1: refused)\n  (/ip4/5/udp: x)\n]"
        )
        .context("cannot reach the node");
        let line = one_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("(/ip4/1.2.3.4/tcp/1: refused) (/ip4/5/udp: x)"),
            "{line}"
        );
    }
}
