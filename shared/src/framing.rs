//! The native-messaging frame codec: a 4-byte length in native byte order, then that many
//! bytes of UTF-8 JSON. Chrome and Firefox use it between the browser and a native host; the
//! broker reuses it on the pipes to its executor processes, so there is one codec for all.
//!
//! [`FrameDecoder`] is sans-I/O: feed it bytes from any source (a blocking `Read`, a tokio
//! pipe) and take whole frames out. A frame whose declared length exceeds the limit is
//! reported once as [`FrameError::TooLarge`] and its payload is skipped as it arrives, so one
//! bad frame never desynchronises the stream. [`FrameReader`] and [`write_frame`] wrap it for
//! blocking `std::io` callers.

use std::io::{self, Read, Write};

use serde::Serialize;

/// Bytes in the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("stream ended inside a frame: expected {expected} bytes, got {got}")]
    Truncated { expected: usize, got: usize },
    #[error("frame is not valid JSON: {0}")]
    InvalidJson(#[from] serde_json::Error),
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Encodes `payload` as one frame, refusing payloads over `max` bytes.
pub fn encode_frame(payload: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    if payload.len() > max {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max,
        });
    }
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len(),
        max,
    })?;
    let mut out = Vec::with_capacity(LENGTH_PREFIX + payload.len());
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Serializes `message` to JSON and encodes it as one frame.
pub fn encode_message<T: Serialize>(message: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let json = serde_json::to_vec(message)?;
    encode_frame(&json, max)
}

/// Writes `payload` as one frame and flushes, so the peer sees it at once.
pub fn write_frame<W: Write>(out: &mut W, payload: &[u8], max: usize) -> Result<(), FrameError> {
    let frame = encode_frame(payload, max)?;
    out.write_all(&frame)?;
    out.flush()?;
    Ok(())
}

/// Serializes `message` and writes it as one frame.
pub fn write_message<W: Write, T: Serialize>(
    out: &mut W,
    message: &T,
    max: usize,
) -> Result<(), FrameError> {
    let frame = encode_message(message, max)?;
    out.write_all(&frame)?;
    out.flush()?;
    Ok(())
}

/// Incremental frame decoder: push bytes in, pull frames out.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
    /// Payload bytes of an oversized frame still to be discarded.
    skipping: usize,
}

impl FrameDecoder {
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            skipping: 0,
        }
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.skipping > 0 {
            let skip = self.skipping.min(bytes.len());
            self.skipping -= skip;
            bytes = &bytes[skip..];
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived. An oversized frame yields one
    /// `Err(TooLarge)`; decoding continues with the frame after it.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        if self.skipping > 0 || self.buf.len() < LENGTH_PREFIX {
            return None;
        }
        let mut prefix = [0u8; LENGTH_PREFIX];
        prefix.copy_from_slice(&self.buf[..LENGTH_PREFIX]);
        let len = u32::from_ne_bytes(prefix) as usize;
        if len > self.max {
            let available = self.buf.len() - LENGTH_PREFIX;
            let skip_now = available.min(len);
            self.buf.drain(..LENGTH_PREFIX + skip_now);
            self.skipping = len - skip_now;
            return Some(Err(FrameError::TooLarge { len, max: self.max }));
        }
        if self.buf.len() < LENGTH_PREFIX + len {
            return None;
        }
        let frame = self.buf[LENGTH_PREFIX..LENGTH_PREFIX + len].to_vec();
        self.buf.drain(..LENGTH_PREFIX + len);
        Some(Ok(frame))
    }

    /// Call at end of stream: `Err(Truncated)` if a frame was cut off.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.skipping > 0 {
            return Err(FrameError::Truncated {
                expected: self.skipping,
                got: 0,
            });
        }
        match self.buf.len() {
            0 => Ok(()),
            n if n < LENGTH_PREFIX => Err(FrameError::Truncated {
                expected: LENGTH_PREFIX,
                got: n,
            }),
            n => {
                let mut prefix = [0u8; LENGTH_PREFIX];
                prefix.copy_from_slice(&self.buf[..LENGTH_PREFIX]);
                Err(FrameError::Truncated {
                    expected: u32::from_ne_bytes(prefix) as usize,
                    got: n - LENGTH_PREFIX,
                })
            }
        }
    }
}

/// Blocking frame reader over any `Read`.
pub struct FrameReader<R> {
    inner: R,
    decoder: FrameDecoder,
    eof: bool,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            decoder: FrameDecoder::new(max),
            eof: false,
        }
    }

    /// The next frame; `Ok(None)` on a clean end of stream. After an `Err(TooLarge)` the
    /// reader stays usable; after `Err(Truncated)` or `Err(Io)` the stream is over.
    pub fn read_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(frame) = self.decoder.next_frame() {
                return frame.map(Some);
            }
            if self.eof {
                return self.decoder.finish().map(|()| None);
            }
            let n = match self.inner.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                self.eof = true;
            } else {
                self.decoder.push(&chunk[..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(len: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = len.to_ne_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn round_trips_frames_split_at_every_byte() {
        let mut stream = encode_frame(b"{\"a\":1}", 100).unwrap();
        stream.extend(encode_frame(b"[]", 100).unwrap());
        for split in 0..stream.len() {
            let mut d = FrameDecoder::new(100);
            d.push(&stream[..split]);
            let mut got = Vec::new();
            while let Some(f) = d.next_frame() {
                got.push(f.unwrap());
            }
            d.push(&stream[split..]);
            while let Some(f) = d.next_frame() {
                got.push(f.unwrap());
            }
            assert_eq!(got, vec![b"{\"a\":1}".to_vec(), b"[]".to_vec()]);
            d.finish().unwrap();
        }
    }

    #[test]
    fn oversized_frame_is_reported_once_and_skipped() {
        let mut stream = frame_bytes(10, b"0123456789");
        stream.extend(frame_bytes(2, b"ok"));
        let mut r = FrameReader::new(&stream[..], 5);
        assert!(matches!(
            r.read_frame(),
            Err(FrameError::TooLarge { len: 10, max: 5 })
        ));
        assert_eq!(r.read_frame().unwrap(), Some(b"ok".to_vec()));
        assert_eq!(r.read_frame().unwrap(), None);
    }

    #[test]
    fn truncated_frame_is_an_error_not_a_clean_end() {
        let stream = frame_bytes(10, b"0123");
        let mut r = FrameReader::new(&stream[..], 100);
        assert!(matches!(
            r.read_frame(),
            Err(FrameError::Truncated {
                expected: 10,
                got: 4
            })
        ));
        let mut r = FrameReader::new(&[1u8, 0][..], 100);
        assert!(matches!(r.read_frame(), Err(FrameError::Truncated { .. })));
    }

    #[test]
    fn writer_refuses_oversized_payloads() {
        let mut out = Vec::new();
        let err = write_frame(&mut out, &[b'x'; 11], 10).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 11, max: 10 }));
        assert!(out.is_empty(), "nothing may be written for a refused frame");
    }
}
