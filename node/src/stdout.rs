//! Command output. Everything a command prints on stdout goes through
//! [`outln!`] or [`out!`], which return an error instead of panicking, so
//! a reader that went away (`ifsnode ls | head -1`) ends the command
//! quietly in `main` (see [`is_closed`]), as it ends `cat` or `grep`.
//! Notes on stderr go through [`errln!`], which never fails a command.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Stdout's reader closed the pipe; nothing more can be shown.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Write `args` to stdout at once and flush, so a closed pipe shows here.
pub fn write(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::Error::new(tag(e)).context("cannot write to stdout"))
}

/// Print a running service's line (`run`, `devnet`): a reader that went
/// away must not stop the service, so a failure is logged, once, and the
/// service goes on.
pub fn announce(args: fmt::Arguments<'_>) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(e) = write(args)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!("{e:#}; carrying on without it");
    }
}

/// Stdout as a writer for data a library streams out (`get NAME -`); a
/// broken pipe carries [`StdoutClosed`] through the library's errors.
pub struct Stdout(io::Stdout);

impl Stdout {
    /// The process's stdout.
    pub fn new() -> Self {
        Stdout(io::stdout())
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(tag)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(tag)
    }
}

/// Mark a broken pipe on stdout as [`StdoutClosed`]; other errors pass.
fn tag(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

/// Whether `e` is stdout closed by its reader (not, say, a peer's socket).
pub fn is_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<StdoutClosed>()
            || c.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

/// Print a line on stdout: `outln!("{x}")?`.
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Print a service's line on stdout, carrying on if it cannot be shown
/// (see [`announce`]).
macro_rules! announceln {
    ($($arg:tt)*) => {
        $crate::stdout::announce(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Print on stdout without a newline: `out!("{table}")?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

/// Print a line on stderr; a stderr that cannot be written is ignored.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {announceln, errln, out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_counts_as_closed() {
        let closed = anyhow::Error::new(tag(io::ErrorKind::BrokenPipe.into())).context("get x");
        assert!(is_closed(&closed));
        let socket = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_closed(&socket), "a peer's broken pipe is a real error");
        let full = anyhow::Error::new(tag(io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!is_closed(&full));
    }
}
