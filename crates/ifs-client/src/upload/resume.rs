//! `put` of a local file that resumes a cut upload of the same file.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;

use ifs_core::keys::UserKey;
use tracing::warn;

use super::saved::remove_state;
use super::{Segments, Upload};
use crate::error::PutError;
use crate::pages;
use crate::put::{PutOptions, PutReport, now_ms};
use crate::session::Session;

/// What a resumed put found before sending anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// Chunks already placed, within [`RESUME_WINDOW`](super::RESUME_WINDOW), not sent again.
    pub stored: usize,
    /// Chunks the file has.
    pub chunks: u64,
}

/// Put the local file `file` of `size` bytes as `opts.name`, resuming the
/// upload saved at `state` when there is one for this name and key (and
/// the name got no newer version since), saving there after every chunk,
/// and deleting it once the file is committed. `on_resume` hears how much
/// was already stored before anything is sent.
pub async fn put_file(
    session: &Session,
    key: &UserKey,
    mut file: std::fs::File,
    size: u64,
    opts: PutOptions,
    state: &Path,
    on_resume: impl FnOnce(Resumed),
) -> Result<PutReport, PutError> {
    use std::io::{Seek, SeekFrom};
    pages::check_size(size, opts.codec.segment_size as u64)?;
    let mut upload = match Upload::load(state, key, opts.clone()) {
        Ok(mut u) => match u.check_current(session, key).await {
            Ok(()) => {
                u.set_options(opts.clone());
                Some(u)
            }
            Err(e) => {
                warn!("not resuming the saved upload, starting over: {e}");
                None
            }
        },
        Err(PutError::StateIo { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => {
            warn!("not resuming the saved upload, starting over: {e}");
            None
        }
    };
    if upload.is_none() {
        let mut u = Upload::begin(session, key, opts.clone()).await?;
        u.persist_to(state);
        upload = Some(u);
    }
    let Some(upload) = upload else {
        return Err(PutError::EncoderGone);
    };
    let seg = upload.segment_size();
    let chunks = size.div_ceil(seg).max(1);
    let stored = upload.fresh_chunks(now_ms());
    if stored > 0 {
        on_resume(Resumed { stored, chunks });
    }
    // Twice at most: a chunk kept as fresh may pass the window before the
    // commit checks it; the second round sends it again.
    let mut round = 0;
    loop {
        round += 1;
        let from = upload.resume_from(now_ms());
        let skip = (u64::from(from) * seg).min(size);
        if round == 1
            && let Some(p) = &opts.progress
        {
            p.fetch_add(skip, Ordering::Relaxed);
        }
        let io = |e| PutError::Codec(ifs_core::CodecError::Read(e));
        file.seek(SeekFrom::Start(skip)).map_err(io)?;
        let reader = file.try_clone().map_err(io)?;
        let rest = Segments {
            first_index: from,
            data: reader.take(size - skip),
            size_hint: Some(size - skip),
            exact_size: false,
            last: true,
            keep_placed: true,
        };
        upload.put_segments(session, key, rest).await?;
        match upload.commit(session, key, size).await {
            Err(PutError::Stale { .. }) if round < 2 => continue,
            Err(e) => return Err(e),
            Ok(report) => {
                remove_state(state);
                return Ok(report);
            }
        }
    }
}
