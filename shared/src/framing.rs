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
///
/// Each byte is copied once on its way in and, for a frame that arrived whole inside one
/// push, once more on its way out. Consumed bytes are not shifted out frame by frame (which
/// made a read holding many small frames quadratic) but skipped by an offset and dropped when
/// the buffer empties or is mostly consumed. A frame that spans several pushes is assembled in
/// its own buffer, grown as its bytes arrive: a length prefix alone never allocates more than
/// [`ASSEMBLY_RESERVE`] bytes.
#[derive(Debug)]
pub struct FrameDecoder {
    /// Received bytes not yet parsed start at `buf[start]`.
    buf: Vec<u8>,
    start: usize,
    /// A frame whose payload arrives over several pushes: what has arrived, and its length.
    assembling: Option<(Vec<u8>, usize)>,
    max: usize,
    /// Payload bytes of an oversized frame still to be discarded.
    skipping: usize,
}

/// Most a frame being assembled reserves ahead of the bytes that actually arrived.
pub const ASSEMBLY_RESERVE: usize = 1024 * 1024;

impl FrameDecoder {
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            assembling: None,
            max,
            skipping: 0,
        }
    }

    /// Bytes held: unparsed input plus a partly assembled frame. Bounded by what was pushed
    /// and not yet taken out, never by a declared length.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start + self.assembling.as_ref().map_or(0, |(f, _)| f.len())
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.skipping > 0 {
            let skip = self.skipping.min(bytes.len());
            self.skipping -= skip;
            bytes = &bytes[skip..];
        }
        if let Some((frame, len)) = &mut self.assembling {
            let take = (*len - frame.len()).min(bytes.len());
            if frame.capacity() - frame.len() < take {
                // Grow towards the declared length, but only as fast as bytes arrive.
                let want = (*len - frame.len()).min(take.max(frame.len()).max(ASSEMBLY_RESERVE));
                frame.reserve(want);
            }
            frame.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if !bytes.is_empty() {
            if self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            }
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next complete frame, if one has arrived. An oversized frame yields one
    /// `Err(TooLarge)`; decoding continues with the frame after it.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        if let Some((frame, len)) = &self.assembling {
            if frame.len() < *len {
                return None;
            }
            return self.assembling.take().map(|(frame, _)| Ok(frame));
        }
        if self.skipping > 0 {
            return None;
        }
        let pending = &self.buf[self.start..];
        if pending.len() < LENGTH_PREFIX {
            self.compact();
            return None;
        }
        let mut prefix = [0u8; LENGTH_PREFIX];
        prefix.copy_from_slice(&pending[..LENGTH_PREFIX]);
        let len = u32::from_ne_bytes(prefix) as usize;
        let available = pending.len() - LENGTH_PREFIX;
        if len > self.max {
            let skip_now = available.min(len);
            self.start += LENGTH_PREFIX + skip_now;
            self.skipping = len - skip_now;
            self.compact();
            return Some(Err(FrameError::TooLarge { len, max: self.max }));
        }
        if available >= len {
            let body = self.start + LENGTH_PREFIX;
            let frame = self.buf[body..body + len].to_vec();
            self.start = body + len;
            self.compact();
            return Some(Ok(frame));
        }
        // The rest of this frame is still to come: assemble it on its own, so the bytes that
        // follow are appended to it directly instead of to the shared buffer.
        let mut frame = Vec::with_capacity(len.min(available.max(ASSEMBLY_RESERVE)));
        frame.extend_from_slice(&pending[LENGTH_PREFIX..]);
        self.buf.clear();
        self.start = 0;
        self.assembling = Some((frame, len));
        None
    }

    /// Drops consumed bytes once they are most of the buffer, so it cannot grow without bound
    /// while each shift stays proportional to the bytes consumed since the last one.
    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Call at end of stream: `Err(Truncated)` if a frame was cut off.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.skipping > 0 {
            return Err(FrameError::Truncated {
                expected: self.skipping,
                got: 0,
            });
        }
        if let Some((frame, len)) = &self.assembling {
            if frame.len() < *len {
                return Err(FrameError::Truncated {
                    expected: *len,
                    got: frame.len(),
                });
            }
            return Ok(());
        }
        let pending = &self.buf[self.start..];
        match pending.len() {
            0 => Ok(()),
            n if n < LENGTH_PREFIX => Err(FrameError::Truncated {
                expected: LENGTH_PREFIX,
                got: n,
            }),
            n => {
                let mut prefix = [0u8; LENGTH_PREFIX];
                prefix.copy_from_slice(&pending[..LENGTH_PREFIX]);
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
    fn many_small_frames_and_a_spanning_one_keep_their_order() {
        let mut stream = Vec::new();
        for i in 0..1000u32 {
            stream.extend(encode_frame(i.to_string().as_bytes(), 100).unwrap());
        }
        let big = vec![b'y'; 90];
        stream.extend(encode_frame(&big, 100).unwrap());
        stream.extend(encode_frame(b"after", 100).unwrap());
        // Reads of 7 bytes: the big frame is assembled across many pushes.
        let mut d = FrameDecoder::new(100);
        let mut got = Vec::new();
        for chunk in stream.chunks(7) {
            d.push(chunk);
            while let Some(f) = d.next_frame() {
                got.push(f.unwrap());
            }
            assert!(d.buffered() <= 100 + 7, "{}", d.buffered());
        }
        d.finish().unwrap();
        assert_eq!(got.len(), 1002);
        assert_eq!(got[999], b"999");
        assert_eq!(got[1000], big);
        assert_eq!(got[1001], b"after");
    }

    #[test]
    fn a_length_prefix_alone_allocates_little() {
        let mut d = FrameDecoder::new(usize::MAX);
        d.push(&u32::MAX.to_ne_bytes());
        d.push(b"abc");
        assert!(d.next_frame().is_none());
        assert_eq!(d.buffered(), 3);
        let reserved = d.assembling.as_ref().map_or(0, |(f, _)| f.capacity());
        assert!(reserved <= 2 * ASSEMBLY_RESERVE, "{reserved}");
        assert!(matches!(
            d.finish(),
            Err(FrameError::Truncated { got: 3, .. })
        ));
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
