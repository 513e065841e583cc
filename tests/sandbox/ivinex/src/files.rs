//! Deterministic attachment binaries: the bytes of a generated attachment are a pure function of
//! (tenant seed, attachment id, file name, size), produced in chunks so large files are streamed.

use md5::{Digest, Md5};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Offset of the RNG stream used for binaries, apart from the generator's own streams.
const BLOB_STREAM_BASE: u64 = 1 << 40;

pub const CHUNK: usize = 64 * 1024;

/// Sequential producer of one generated binary.
pub struct BlobGen {
    rng: ChaCha8Rng,
    header: &'static [u8],
    text: bool,
    pos: u64,
    size: u64,
}

fn kind_of(file_name: &str) -> (&'static [u8], bool) {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => (b"\x89PNG\r\n\x1a\n", false),
        "jpg" | "jpeg" => (b"\xff\xd8\xff\xe0", false),
        "gif" => (b"GIF89a", false),
        "pdf" => (b"%PDF-1.4\n", false),
        "zip" | "docx" | "xlsx" | "pptx" => (b"PK\x03\x04", false),
        "gz" => (b"\x1f\x8b\x08", false),
        "txt" | "csv" | "log" | "eml" | "html" | "json" => (b"", true),
        _ => (b"", false),
    }
}

impl BlobGen {
    pub fn new(seed: u64, attachment_id: u64, file_name: &str, size: u64) -> BlobGen {
        let (header, text) = kind_of(file_name);
        BlobGen {
            rng: sandbox_kit::seeded_rng(seed, BLOB_STREAM_BASE + attachment_id),
            header,
            text,
            pos: 0,
            size,
        }
    }

    pub fn remaining(&self) -> u64 {
        self.size - self.pos
    }

    /// The next chunk (at most `max` bytes); empty once the whole size has been produced.
    pub fn next_chunk(&mut self, max: usize) -> Vec<u8> {
        let n = (self.remaining().min(max as u64)) as usize;
        let mut buf = vec![0u8; n];
        self.rng.fill_bytes(&mut buf);
        if self.text {
            const ALPHABET: &[u8; 64] =
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n";
            for b in buf.iter_mut() {
                *b = ALPHABET[(*b & 63) as usize];
            }
        }
        let start = self.pos as usize;
        if start < self.header.len() {
            for (i, b) in buf.iter_mut().enumerate() {
                match self.header.get(start + i) {
                    Some(h) => *b = *h,
                    None => break,
                }
            }
        }
        self.pos += n as u64;
        buf
    }

    /// The whole binary in memory (only for small files).
    pub fn all(mut self) -> Vec<u8> {
        let n = self.remaining() as usize;
        self.next_chunk(n)
    }

    /// The MD5 of the whole binary, computed chunk by chunk.
    pub fn md5(mut self) -> String {
        let mut h = Md5::new();
        while self.remaining() > 0 {
            h.update(self.next_chunk(CHUNK * 4));
        }
        hex::encode(h.finalize())
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Content-Type guessed from the file extension.
pub fn content_type(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "html" => "text/html",
        "json" => "application/json",
        "eml" => "message/rfc822",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}
