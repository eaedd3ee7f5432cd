//! A gzip writer that compresses on several cores and still writes the same
//! bytes for the same input, whatever the number of threads.
//!
//! The input is cut into fixed [`CHUNK`]-byte chunks. Each chunk becomes
//! its own run of non-final deflate blocks: compressed with a fresh
//! dictionary and ended by a sync flush (byte-aligned, as pigz does), or,
//! when its bytes look incompressible (near-uniform byte histogram: already
//! compressed or random data), copied into stored blocks without trying.
//! The stream ends with an empty final stored block and the gzip trailer
//! (CRC-32 and length of the whole input), so any gzip reader reads it as
//! one member. Chunks are compressed by worker threads and written in
//! order; what a chunk becomes depends only on its bytes, so the output is
//! deterministic.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Bytes of input per independently compressed chunk.
pub const CHUNK: usize = 1 << 20;

/// Chunks whose collision entropy is at least 7.95 bits per byte are
/// stored: `STORE_LIMIT / STORE_SCALE` is 2^(8 - 7.95) = 1.03526..., rounded
/// down.
const STORE_SCALE: u128 = 10_000;
/// See [`STORE_SCALE`].
const STORE_LIMIT: u128 = 10_352;

/// The gzip header: no name, no mtime, OS "unknown" (255), as the
/// single-threaded writer had it.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// An empty final stored block (the previous output is byte-aligned).
const FINAL_BLOCK: [u8; 5] = [0x01, 0x00, 0x00, 0xff, 0xff];

/// Largest stored block.
const STORED_MAX: usize = 65535;

/// The deflate data of one chunk (non-final blocks, byte-aligned at the end).
fn deflate_chunk(data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    if looks_incompressible(data) {
        return Ok(stored(data));
    }
    let mut c = flate2::Compress::new(flate2::Compression::new(level), false);
    // Above deflate's worst case, so one call normally does it all.
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 4096);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.len().max(64 * 1024));
        }
        let before = c.total_in();
        c.compress_vec(input, &mut out, flate2::FlushCompress::Sync)
            .map_err(io::Error::other)?;
        let used = (c.total_in() - before) as usize;
        input = &input[used..];
        // Done when all input is in and the flush left room to spare (a
        // full buffer may hold more flushed output).
        if input.is_empty() && out.capacity() - out.len() >= 1024 {
            break;
        }
    }
    if out.len() > data.len() + data.len() / STORED_MAX * 5 + 5 {
        return Ok(stored(data));
    }
    Ok(out)
}

/// `data` as non-final stored blocks.
fn stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / STORED_MAX * 5 + 5);
    for block in data.chunks(STORED_MAX) {
        let n = block.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(block);
    }
    out
}

/// Whether the byte histogram of `data` is near-uniform (no gain from
/// Huffman coding, and random-looking data has no repeats to find): its
/// collision entropy `-log2(sum p^2)` is at least 7.95 bits, i.e.
/// `256 * sum(c^2) <= n^2 * 2^0.05`. In integers, so
/// the decision (and the output) cannot differ between machines or libms.
fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let sum_sq: u128 = counts.iter().map(|&c| u128::from(c) * u128::from(c)).sum();
    let n = data.len() as u128;
    sum_sq * 256 * STORE_SCALE <= n * n * STORE_LIMIT
}

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// A gzip encoder over `W` that compresses chunks on `threads` threads.
pub struct ParallelGzip<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
    level: u32,
    next_seq: u64,
    next_write: u64,
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Done>,
    ready: BTreeMap<u64, io::Result<Vec<u8>>>,
    /// Dropped unfinished (an error), the writer drops the job channel:
    /// the workers end after their current chunk.
    workers: Vec<JoinHandle<()>>,
    in_flight: usize,
    max_in_flight: usize,
}

impl<W: Write> ParallelGzip<W> {
    /// A writer at deflate `level` (0-9) on `threads` worker threads (at
    /// least one); the gzip header is written at once.
    pub fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        let threads = threads.max(1);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
        let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let rx = std::sync::Arc::clone(&job_rx);
            let tx = done_tx.clone();
            workers.push(std::thread::spawn(move || loop {
                let job = {
                    let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
                    guard.recv()
                };
                let Ok((seq, data)) = job else { return };
                if tx.send((seq, deflate_chunk(&data, level))).is_err() {
                    return;
                }
            }));
        }
        Ok(ParallelGzip {
            out,
            buf: Vec::with_capacity(CHUNK),
            crc: crc32fast::Hasher::new(),
            len: 0,
            level,
            next_seq: 0,
            next_write: 0,
            jobs: Some(job_tx),
            done: done_rx,
            ready: BTreeMap::new(),
            workers,
            in_flight: 0,
            max_in_flight: threads * 2 + 1,
        })
    }

    /// The deflate level.
    pub fn level(&self) -> u32 {
        self.level
    }

    fn send_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        while self.in_flight >= self.max_in_flight {
            self.collect_one()?;
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let seq = self.next_seq;
        self.next_seq += 1;
        let tx = self
            .jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        tx.send((seq, data))
            .map_err(|_| io::Error::other("gzip worker thread exited"))?;
        self.in_flight += 1;
        Ok(())
    }

    /// Waits for one compressed chunk and writes every chunk that is next.
    fn collect_one(&mut self) -> io::Result<()> {
        let (seq, r) = self
            .done
            .recv()
            .map_err(|_| io::Error::other("gzip worker thread exited"))?;
        self.in_flight -= 1;
        self.ready.insert(seq, r);
        while let Some(r) = self.ready.remove(&self.next_write) {
            self.out.write_all(&r?)?;
            self.next_write += 1;
        }
        Ok(())
    }

    /// Compresses what is left, writes the end of the stream and returns
    /// the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.send_chunk()?;
        self.jobs = None;
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.out.write_all(&FINAL_BLOCK)?;
        let crc = std::mem::take(&mut self.crc).finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.len as u32).to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.crc.update(&data[..n]);
        self.len += n as u64;
        if self.buf.len() == CHUNK {
            self.send_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Worker threads for layer compression: the machine's cores, at most 8.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        // Text, zeros, pseudo-random bytes, and a tail that is not a whole chunk.
        let mut v = Vec::new();
        for i in 0..40_000 {
            v.extend_from_slice(format!("line {i} of some text\n").as_bytes());
        }
        v.extend(std::iter::repeat_n(0u8, CHUNK + 17));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..(3 * CHUNK / 8 + 5) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(b"the end");
        v
    }

    fn gzip(data: &[u8], threads: usize, pieces: usize) -> Vec<u8> {
        let mut w = ParallelGzip::new(Vec::new(), 6, threads).expect("new");
        for part in data.chunks(pieces) {
            w.write_all(part).expect("write");
        }
        w.finish().expect("finish")
    }

    #[test]
    fn decodes_to_the_input_and_is_the_same_for_any_thread_count() {
        let data = sample();
        let one = gzip(&data, 1, 4093);
        assert_eq!(one, gzip(&data, 3, 100_000));
        assert_eq!(one, gzip(&data, 8, CHUNK));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .expect("decode");
        assert_eq!(back, data);
        // Compressible parts shrink, the random part is stored (not grown
        // by more than the stored-block headers).
        assert!(one.len() < data.len());
        assert!(one.len() > 3 * CHUNK);
    }

    #[test]
    fn empty_input_is_a_valid_empty_gzip() {
        let out = gzip(b"", 2, 1);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .expect("decode");
        assert!(back.is_empty());
    }

    #[test]
    fn random_chunks_are_stored_and_text_is_not() {
        let data = sample();
        assert!(!looks_incompressible(&data[..CHUNK]));
        let random = &data[data.len() - 2 * CHUNK..data.len() - CHUNK];
        assert!(looks_incompressible(random));
        let s = stored(random);
        assert_eq!(
            s.len(),
            random.len() + random.len().div_ceil(STORED_MAX) * 5
        );
    }
}
