//! Length-prefixed frames on bulk streams: a 4-byte big-endian length, then
//! that many bytes. Reads are capped and bounded in time by the caller's
//! timeout, so a peer cannot make us allocate or wait freely.

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Errors reading or writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer announced a frame above the cap.
    #[error("frame of {len} bytes exceeds the cap of {cap}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// The stream failed or closed early.
    #[error("stream: {0}")]
    Io(#[from] io::Error),
    /// Nothing arrived in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// Write one frame (without flushing).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    payload: &[u8],
) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len(),
        cap: u32::MAX as usize,
    })?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(payload).await?;
    Ok(())
}

/// Read one frame of at most `cap` bytes within `timeout`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    cap: usize,
    timeout: Duration,
) -> Result<Vec<u8>, FrameError> {
    let read = async {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > cap {
            return Err(FrameError::TooLarge { len, cap });
        }
        let mut buf = vec![0u8; len];
        r.read_exact(&mut buf).await?;
        Ok(buf)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| FrameError::Timeout(timeout))?
}

/// Read exactly `buf.len()` bytes within `timeout`.
pub async fn read_exact_timeout<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    timeout: Duration,
) -> Result<(), FrameError> {
    tokio::time::timeout(timeout, r.read_exact(buf))
        .await
        .map_err(|_| FrameError::Timeout(timeout))?
        .map_err(FrameError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_frames_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").await.unwrap();
        write_frame(&mut buf, &[7u8; 100]).await.unwrap();
        let mut r = Cursor::new(buf);
        let t = Duration::from_secs(1);
        assert_eq!(read_frame(&mut r, 10, t).await.unwrap(), b"hello");
        assert!(matches!(
            read_frame(&mut r, 10, t).await,
            Err(FrameError::TooLarge { len: 100, cap: 10 })
        ));
    }

    #[tokio::test]
    async fn a_truncated_frame_is_an_error() {
        let mut r = Cursor::new(vec![0, 0, 0, 9, 1, 2]);
        assert!(matches!(
            read_frame(&mut r, 64, Duration::from_secs(1)).await,
            Err(FrameError::Io(_))
        ));
    }
}
