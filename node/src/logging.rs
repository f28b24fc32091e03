//! Logging to stderr with `tracing-subscriber`.
//!
//! `RUST_LOG` wins when set (e.g. `RUST_LOG=ifs_net=debug`); otherwise each
//! `-v` raises the level: warn → info → debug → trace. Stdout stays free for
//! command output that scripts parse.

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is not set, for `-v` given `verbose` times.
pub fn default_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Install the global subscriber. Call once, before any command runs.
pub fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => EnvFilter::try_new(&s).unwrap_or_else(|e| {
            crate::stdout::errln!("ifsnode: ignoring RUST_LOG={s:?}: {e}");
            EnvFilter::new(default_filter(verbose))
        }),
        _ => EnvFilter::new(default_filter(verbose)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(verbose >= 2)
        .init();
}

#[cfg(test)]
mod tests {
    use super::default_filter;

    #[test]
    fn each_v_raises_the_level() {
        assert_eq!(default_filter(0), "warn");
        assert_eq!(default_filter(1), "info");
        assert_eq!(default_filter(2), "debug");
        assert_eq!(default_filter(9), "trace");
    }
}
