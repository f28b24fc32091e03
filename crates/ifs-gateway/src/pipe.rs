//! A request body handed to a blocking reader as it arrives: the async
//! side sends frames, the encoder's thread reads them. The reader sees
//! the end only when the sender says the body ended well; a sender that
//! goes away first (a body refused half-way) is a read error, never a
//! short file.

use std::io::{Error, ErrorKind, Read};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

enum Msg {
    Data(Bytes),
    End,
}

/// The async end of a pipe.
pub(crate) struct PipeWriter {
    tx: mpsc::Sender<Msg>,
}

/// The reader went away (its upload stopped).
#[derive(Debug)]
pub(crate) struct ReaderGone;

impl PipeWriter {
    /// Hand `frame` to the reader, waiting while `frames` are queued.
    pub(crate) async fn send(&self, frame: Bytes) -> Result<(), ReaderGone> {
        self.tx.send(Msg::Data(frame)).await.map_err(|_| ReaderGone)
    }

    /// The body ended well: the reader sees its end.
    pub(crate) async fn end(self) {
        let _ = self.tx.send(Msg::End).await;
    }
}

/// The blocking end of a pipe, for a thread outside the async runtime.
pub(crate) struct PipeReader {
    rx: mpsc::Receiver<Msg>,
    cur: Bytes,
    ended: bool,
}

/// A pipe holding at most `frames` frames in flight.
pub(crate) fn pipe(frames: usize) -> (PipeWriter, PipeReader) {
    let (tx, rx) = mpsc::channel(frames.max(1));
    (
        PipeWriter { tx },
        PipeReader {
            rx,
            cur: Bytes::new(),
            ended: false,
        },
    )
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.cur.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Msg::Data(frame)) => self.cur = frame,
                Some(Msg::End) => self.ended = true,
                None => {
                    return Err(Error::new(
                        ErrorKind::UnexpectedEof,
                        "the request body stopped before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_reader_gets_every_byte_then_the_end_only_when_the_body_ended_well() {
        let (w, mut r) = pipe(2);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).map(|_| got)
        });
        for f in [&b"abc"[..], b"", b"defgh"] {
            w.send(Bytes::copy_from_slice(f)).await.unwrap();
        }
        w.end().await;
        assert_eq!(reader.join().unwrap().unwrap(), b"abcdefgh");

        // A writer dropped before the end: the reader gets an error, not
        // a body cut short.
        let (w, mut r) = pipe(2);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).map(|_| got)
        });
        w.send(Bytes::from_static(b"half")).await.unwrap();
        drop(w);
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);

        // A reader gone: the writer learns it at once.
        let (w, r) = pipe(1);
        drop(r);
        assert!(w.send(Bytes::from_static(b"x")).await.is_err());
    }
}
