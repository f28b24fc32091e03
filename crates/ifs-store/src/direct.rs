//! Piece files through `O_DIRECT`: bytes go between the disk and a reused,
//! aligned buffer without passing through the page cache.
//!
//! Why: a volunteer's page cache belongs to the machine's owner. Pieces are
//! written once and read rarely (a get, a scrub, an audit), so caching them
//! only evicts the owner's data; a scrub that reads through the cache may
//! even check the cached copy instead of the disk. Copying each piece into
//! the page cache and then flushing it also costs more CPU than handing the
//! disk an aligned buffer, which on two cores is what bounds a chain of
//! three replicas (see `docs/architecture.md`).
//!
//! Not every filesystem takes `O_DIRECT` (tmpfs before Linux 6.6, some
//! FUSE and network filesystems): an open or a transfer refused with
//! `EINVAL` falls back to ordinary buffered I/O for that file, so the store
//! works everywhere and is only faster where it can be.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Alignment of buffer addresses, file offsets and lengths for `O_DIRECT`:
/// the page size, which every block size in practical use divides.
pub(crate) const ALIGN: usize = 4096;

/// Bounce buffers larger than this are not kept between calls.
const KEEP_MAX: usize = 8 << 20;

thread_local! {
    /// One reused buffer per blocking thread: a fresh allocation per piece
    /// would fault in new pages every time.
    static BOUNCE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `n` rounded up to a multiple of [`ALIGN`].
pub(crate) fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Runs `f` on an [`ALIGN`]-aligned, zero-filled slice of `len` bytes
/// (`len` a multiple of [`ALIGN`]).
fn with_aligned<T>(len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
    debug_assert_eq!(len % ALIGN, 0);
    let run = |v: &mut Vec<u8>| {
        if v.len() < len + ALIGN {
            v.resize(len + ALIGN, 0);
        }
        let off = v.as_ptr().align_offset(ALIGN);
        let slice = &mut v[off..off + len];
        f(slice)
    };
    if len + ALIGN > KEEP_MAX {
        return run(&mut Vec::new());
    }
    BOUNCE.with(|b| run(&mut b.borrow_mut()))
}

fn is_unsupported(e: &io::Error) -> bool {
    e.kind() == ErrorKind::InvalidInput || e.raw_os_error() == Some(libc::EINVAL)
}

/// How a file was opened.
pub(crate) enum Opened {
    /// With `O_DIRECT`.
    Direct(File),
    /// The filesystem refused `O_DIRECT`: an ordinary file.
    Buffered(File),
}

fn open_with(path: &Path, write: bool, direct: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    if write {
        o.write(true).create(true).truncate(true);
    } else {
        o.read(true);
    }
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

/// Opens `path` for reading (or creates it for writing), with `O_DIRECT`
/// where the filesystem allows it.
pub(crate) fn open(path: &Path, write: bool) -> io::Result<Opened> {
    match open_with(path, write, true) {
        Ok(f) => Ok(Opened::Direct(f)),
        Err(e) if is_unsupported(&e) => open_with(path, write, false).map(Opened::Buffered),
        Err(e) => Err(e),
    }
}

/// Writes all of `data` to the new, empty file `path` and syncs it. Uses
/// `O_DIRECT` where it can: the bytes are copied into an aligned buffer,
/// padded to a whole block, written, and the file is cut back to
/// `data.len()` before the sync.
pub(crate) fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let file = match open(path, true)? {
        Opened::Direct(f) if !data.is_empty() => {
            let padded = round_up(data.len());
            let wrote = with_aligned(padded, |buf| {
                buf[..data.len()].copy_from_slice(data);
                buf[data.len()..].fill(0);
                (&f).write_all(buf)
            });
            match wrote {
                Ok(()) => {
                    if padded != data.len() {
                        f.set_len(data.len() as u64)?;
                    }
                    f
                }
                // The filesystem opened the file but wants another
                // alignment: write it the ordinary way.
                Err(e) if is_unsupported(&e) => buffered_write(path, data)?,
                Err(e) => return Err(e),
            }
        }
        Opened::Direct(f) => f,
        Opened::Buffered(mut f) => {
            f.write_all(data)?;
            f
        }
    };
    file.sync_data()
}

fn buffered_write(path: &Path, data: &[u8]) -> io::Result<File> {
    let mut f = open_with(path, true, false)?;
    f.write_all(data)?;
    Ok(f)
}

/// Reads the first `len` bytes of the open file `f` (of `path`) and appends
/// them to `out`; returns how many bytes it found (fewer than `len` when the
/// file is shorter). Uses `O_DIRECT` when `f` was opened with it.
pub(crate) fn read_into(
    path: &Path,
    f: Opened,
    len: usize,
    out: &mut Vec<u8>,
) -> io::Result<usize> {
    match f {
        Opened::Direct(f) => {
            let padded = round_up(len);
            let got = with_aligned(padded, |buf| -> io::Result<Option<usize>> {
                let mut got = 0;
                while got < padded {
                    match (&f).read(&mut buf[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) if is_unsupported(&e) => return Ok(None),
                        Err(e) => return Err(e),
                    }
                    // A short read not at the end leaves an unaligned
                    // offset, which `O_DIRECT` refuses; the loop then falls
                    // back below.
                }
                let got = got.min(len);
                out.extend_from_slice(&buf[..got]);
                Ok(Some(got))
            })?;
            match got {
                Some(n) => Ok(n),
                None => buffered_read(path, len, out),
            }
        }
        Opened::Buffered(f) => {
            let start = out.len();
            out.reserve(len);
            f.take(len as u64).read_to_end(out)?;
            Ok(out.len() - start)
        }
    }
}

fn buffered_read(path: &Path, len: usize, out: &mut Vec<u8>) -> io::Result<usize> {
    read_into(
        path,
        Opened::Buffered(open_with(path, false, false)?),
        len,
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_every_awkward_length_come_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            3 * ALIGN + 17,
            (4 << 20) + 5,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("p{len}"));
            write_file(&path, &data).unwrap();
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                len as u64,
                "len {len}"
            );
            let mut out = vec![9u8; 3]; // appends after what is there
            let n = read_into(&path, open(&path, false).unwrap(), len, &mut out).unwrap();
            assert_eq!(n, len);
            assert_eq!(&out[..3], &[9, 9, 9]);
            assert!(out[3..] == data[..], "len {len}: bytes differ");
        }
    }

    #[test]
    fn a_short_file_reports_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        write_file(&path, &[5u8; 100]).unwrap();
        let mut out = Vec::new();
        let n = read_into(&path, open(&path, false).unwrap(), 5000, &mut out).unwrap();
        assert_eq!(n, 100);
        assert_eq!(out, vec![5u8; 100]);
    }

    #[test]
    fn rewriting_a_file_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("again");
        write_file(&path, &[1u8; 9000]).unwrap();
        write_file(&path, &[2u8; 10]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), vec![2u8; 10]);
    }
}
