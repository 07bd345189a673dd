//! The native-messaging codec's throughput, against copying the same bytes (the floor any
//! codec must pay), so the ratio says how much the framing itself costs.

use foresight_shared::framing::{FrameDecoder, encode_frame};
use foresight_shared::limits::BROWSER_TO_HOST_MAX_FRAME;

use crate::measure::{median_mb_per_s, samples};
use crate::report::Report;

pub fn run(report: &mut Report) -> Result<(), String> {
    // Large frames spanning several reads, and small ones many to a read (a burst of
    // requests, or a chatty executor): the second is where per-frame costs show.
    measure(
        report,
        "framing",
        256 * 1024,
        64,
        "64 x 256 KiB frames in 64 KiB reads",
    )?;
    measure(
        report,
        "framing.small",
        200,
        80_000,
        "80,000 x 200 B frames in 64 KiB reads",
    )
}

fn measure(
    report: &mut Report,
    prefix: &str,
    frame_bytes: usize,
    frames: usize,
    what: &str,
) -> Result<(), String> {
    let payload = vec![b'x'; frame_bytes];
    let mut stream = Vec::new();
    for _ in 0..frames {
        stream
            .extend(encode_frame(&payload, BROWSER_TO_HOST_MAX_FRAME).map_err(|e| e.to_string())?);
    }
    let copy = samples(3, 30, || {
        let mut out = Vec::with_capacity(stream.len());
        for chunk in stream.chunks(64 * 1024) {
            out.extend_from_slice(chunk);
        }
        std::hint::black_box(out);
    });
    let decode = samples(3, 30, || {
        let mut decoder = FrameDecoder::new(BROWSER_TO_HOST_MAX_FRAME);
        let mut n = 0;
        for chunk in stream.chunks(64 * 1024) {
            decoder.push(chunk);
            while let Some(frame) = decoder.next_frame() {
                n += frame.map(|f| f.len()).unwrap_or(0);
            }
        }
        std::hint::black_box(n);
    });
    let copy_mb = median_mb_per_s(stream.len(), &copy);
    let decode_mb = median_mb_per_s(stream.len(), &decode);
    report.add(
        &format!("{prefix}.decode_throughput"),
        decode_mb,
        "MB/s",
        what,
    );
    report.add(
        &format!("{prefix}.copy_baseline"),
        copy_mb,
        "MB/s",
        "same bytes copied, same chunks",
    );
    report.add(
        &format!("{prefix}.decode_vs_copy"),
        if copy_mb > 0.0 {
            decode_mb / copy_mb
        } else {
            0.0
        },
        "ratio",
        "1.0 = framing costs nothing beyond a copy",
    );
    Ok(())
}
