//! Turns a complete raw deflate stream into one that another stream's blocks can follow.
//!
//! A deflate compressor that only compresses whole buffers (libdeflate) ends its output with a final block
//! (`BFINAL = 1`). To chain such outputs into one stream, as [`super::parallel_gzip`] does, every output but the
//! last must continue instead: [`make_continuable`] walks the blocks (decoding the Huffman codes, writing nothing)
//! to find the final block's header, clears its `BFINAL` bit, and ends the stream with an empty stored block so
//! that it stops on a byte boundary — exactly what zlib's sync flush writes. The walk costs about a tenth of what
//! compressing at level 6 does.

use std::io;

/// Clears the final-block bit of the complete raw deflate stream in `stream` and appends an empty stored block.
///
/// Fails (leaving `stream` unchanged) if `stream` is not one complete, valid deflate stream.
pub fn make_continuable(stream: &mut Vec<u8>) -> io::Result<()> {
    let (final_header, end) = final_block(stream)?;
    stream[final_header / 8] &= !(1 << (final_header % 8));
    stream.truncate(end.div_ceil(8));
    if end % 8 != 0 {
        let last = stream.len() - 1;
        stream[last] &= (1u8 << (end % 8)) - 1;
    }
    // An empty stored block: three zero header bits (not final, stored), padding to the byte, LEN 0, NLEN !0.
    stream.resize((end + 3).div_ceil(8), 0);
    stream.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    Ok(())
}

/// The bit positions of the final block's header and of the end of the stream.
fn final_block(stream: &[u8]) -> io::Result<(usize, usize)> {
    let mut bits = Bits::new(stream);
    let mut tables = Tables::default();
    loop {
        let header = bits.position();
        let last = bits.take(1) == 1;
        match bits.take(2) {
            0 => bits.skip_stored()?,
            1 => {
                tables.fixed();
                tables.skip_symbols(&mut bits)?;
            }
            2 => {
                tables.read_dynamic(&mut bits)?;
                tables.skip_symbols(&mut bits)?;
            }
            _ => return Err(invalid("reserved block type 3")),
        }
        bits.check()?;
        if last {
            return Ok((header, bits.position()));
        }
    }
}

/// Reads bits least significant first, as deflate packs them, through a 64-bit buffer.
struct Bits<'a> {
    data: &'a [u8],
    /// The next unread byte of `data`.
    next: usize,
    buffer: u64,
    /// Valid bits in `buffer`; the bits above them are zero.
    count: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            next: 0,
            buffer: 0,
            count: 0,
        }
    }

    /// Bits consumed so far (past the end of the data when a stream is cut short).
    fn position(&self) -> usize {
        self.next * 8 - self.count as usize
    }

    /// Fills the buffer to at least 56 bits; bits past the end of the data read as zero.
    #[inline]
    fn refill(&mut self) {
        if let Some(bytes) = self.data.get(self.next..self.next + 8) {
            let word = u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
            self.buffer |= word << self.count;
            self.next += (63 - self.count as usize) / 8;
            self.count |= 56;
        } else {
            while self.count < 56 {
                let byte = self.data.get(self.next).copied().unwrap_or(0);
                self.buffer |= u64::from(byte) << self.count;
                self.next += 1;
                self.count += 8;
            }
        }
    }

    /// The next (up to 32) bits without consuming them; call after `refill`.
    #[inline]
    fn peek(&self) -> u32 {
        self.buffer as u32
    }

    /// Drops `n` (at most 32) bits; call after `refill`.
    #[inline]
    fn drop_bits(&mut self, n: u32) {
        self.buffer >>= n;
        self.count -= n;
    }

    fn take(&mut self, n: u32) -> u32 {
        self.refill();
        let value = self.peek() & ((1u32 << n) - 1);
        self.drop_bits(n);
        value
    }

    /// Fails if the bits consumed so far run past the end of the data.
    fn check(&self) -> io::Result<()> {
        if self.position() > self.data.len() * 8 {
            return Err(invalid("the stream ends inside a block"));
        }
        Ok(())
    }

    /// Skips a stored block after its three header bits.
    fn skip_stored(&mut self) -> io::Result<()> {
        let byte = self.position().div_ceil(8);
        let header = self
            .data
            .get(byte..byte + 4)
            .ok_or_else(|| invalid("the stream ends inside a block"))?;
        let len = usize::from(u16::from_le_bytes([header[0], header[1]]));
        let nlen = u16::from_le_bytes([header[2], header[3]]);
        if len != usize::from(!nlen) {
            return Err(invalid("a stored block's length does not match its complement"));
        }
        self.next = byte + 4 + len;
        self.buffer = 0;
        self.count = 0;
        self.check()
    }
}

/// Decoding tables for one block's literal/length and distance codes.
struct Tables {
    litlen: Huffman,
    dist: Huffman,
    /// Code lengths read from a dynamic header (literal/length then distance), kept to spare an allocation.
    lengths: Vec<u8>,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            litlen: Huffman::new(length_extra_bits),
            dist: Huffman::new(distance_extra_bits),
            lengths: Vec::with_capacity(288 + 32),
        }
    }
}

/// The order in which a dynamic header lists the code-length code's lengths.
const CODE_LENGTH_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

impl Tables {
    fn fixed(&mut self) {
        let mut lengths = [0u8; 288 + 32];
        lengths[..144].fill(8);
        lengths[144..256].fill(9);
        lengths[256..280].fill(7);
        lengths[280..288].fill(8);
        lengths[288..].fill(5);
        self.litlen.build(&lengths[..288]).expect("the fixed code is complete");
        self.dist.build(&lengths[288..]).expect("the fixed code is complete");
    }

    fn read_dynamic(&mut self, bits: &mut Bits) -> io::Result<()> {
        let litlen_count = bits.take(5) as usize + 257;
        let dist_count = bits.take(5) as usize + 1;
        let code_length_count = bits.take(4) as usize + 4;
        if litlen_count > 286 || dist_count > 30 {
            return Err(invalid("too many codes in a dynamic block"));
        }
        let mut code_lengths = [0u8; 19];
        for &symbol in &CODE_LENGTH_ORDER[..code_length_count] {
            code_lengths[symbol] = bits.take(3) as u8;
        }
        let mut code_length_code = Huffman::new(|_| 0);
        code_length_code.build(&code_lengths)?;
        self.lengths.clear();
        let total = litlen_count + dist_count;
        while self.lengths.len() < total {
            bits.refill();
            let (repeat, value) = match code_length_code.decode(bits)? {
                length @ 0..=15 => (1, length as u8),
                16 => {
                    let previous = *self
                        .lengths
                        .last()
                        .ok_or_else(|| invalid("a repeat with nothing before it"))?;
                    (3 + bits.take(2) as usize, previous)
                }
                17 => (3 + bits.take(3) as usize, 0),
                _ => (11 + bits.take(7) as usize, 0),
            };
            if self.lengths.len() + repeat > total {
                return Err(invalid("code lengths run past their count"));
            }
            self.lengths.extend(std::iter::repeat_n(value, repeat));
        }
        bits.check()?;
        if self.lengths[256] == 0 {
            return Err(invalid("a block without an end-of-block code"));
        }
        let (litlen, dist) = self.lengths.split_at(litlen_count);
        self.litlen.build(litlen)?;
        self.dist.build(dist)
    }

    /// Walks the block's symbols up to and including its end-of-block code.
    fn skip_symbols(&self, bits: &mut Bits) -> io::Result<()> {
        loop {
            // A length code with its extra bits (20) and a distance code with its extra bits (28) take 48 bits.
            if bits.count < 48 {
                bits.refill();
            }
            let symbol = self.litlen.decode_skipping_extra(bits)?;
            if symbol > 256 {
                if symbol > 285 {
                    return Err(invalid("a length code above 285"));
                }
                if self.dist.decode_skipping_extra(bits)? > 29 {
                    return Err(invalid("a distance code above 29"));
                }
            } else if symbol == 256 {
                return bits.check();
            }
            if bits.next > bits.data.len() {
                bits.check()?;
            }
        }
    }
}

fn length_extra_bits(symbol: u16) -> u32 {
    match symbol {
        265..=284 => u32::from(symbol - 261) / 4,
        _ => 0,
    }
}

fn distance_extra_bits(symbol: u16) -> u32 {
    match symbol {
        4..=29 => u32::from(symbol) / 2 - 1,
        _ => 0,
    }
}

/// Bits the lookup table of a [`Huffman`] code covers; longer (rare) codes are decoded bit by bit.
const TABLE_BITS: u32 = 10;

/// A canonical Huffman code: a lookup table for codes of up to [`TABLE_BITS`] bits, indexed by the next bits
/// (least significant first), and the canonical arrangement for the longer ones.
struct Huffman {
    /// Per entry: the symbol (bits 0–8), its code length (bits 9–12) and the code length plus the symbol's extra
    /// bits (bits 13–17); 0 where a longer code starts, or no code.
    table: Vec<u32>,
    /// Per code length: how many codes have it.
    count: [u16; 16],
    /// The symbols ordered by code length, then by symbol: the order of their canonical codes.
    sorted: Vec<u16>,
    /// How many extra bits follow each symbol in the stream.
    extra_bits: fn(u16) -> u32,
}

fn entry(symbol: u16, length: u32, extra: u32) -> u32 {
    u32::from(symbol) | length << 9 | (length + extra) << 13
}

impl Huffman {
    fn new(extra_bits: fn(u16) -> u32) -> Self {
        Self {
            table: vec![0; 1 << TABLE_BITS],
            count: [0; 16],
            sorted: Vec::with_capacity(288),
            extra_bits,
        }
    }

    fn build(&mut self, lengths: &[u8]) -> io::Result<()> {
        self.count = [0; 16];
        for &length in lengths {
            self.count[usize::from(length)] += 1;
        }
        self.count[0] = 0;
        // The first code of each length, as in RFC 1951 §3.2.2; more codes than a length has room for is invalid.
        let mut next = [0u32; 16];
        let mut code = 0u32;
        for (length, first) in next.iter_mut().enumerate().skip(1) {
            code = (code + u32::from(self.count[length - 1])) << 1;
            *first = code;
            if code + u32::from(self.count[length]) > 1 << length {
                return Err(invalid("an over-subscribed Huffman code"));
            }
        }
        // A counting sort: where each length's symbols start, then each symbol in its place.
        let mut place = [0u16; 16];
        for length in 1..15 {
            place[length + 1] = place[length] + self.count[length];
        }
        self.sorted.clear();
        self.sorted.resize(usize::from(place[15] + self.count[15]), 0);
        for (symbol, &length) in lengths.iter().enumerate() {
            if length > 0 {
                let slot = &mut place[usize::from(length)];
                self.sorted[usize::from(*slot)] = symbol as u16;
                *slot += 1;
            }
        }
        self.table.fill(0);
        for (symbol, &length) in lengths.iter().enumerate() {
            let length = u32::from(length);
            if length == 0 || length > TABLE_BITS {
                continue;
            }
            let code = next[length as usize];
            next[length as usize] += 1;
            let reversed = (code.reverse_bits() >> (32 - length)) as usize;
            let value = entry(symbol as u16, length, (self.extra_bits)(symbol as u16));
            for index in (reversed..1 << TABLE_BITS).step_by(1 << length) {
                self.table[index] = value;
            }
        }
        Ok(())
    }

    /// Decodes one symbol; call after `refill`.
    fn decode(&self, bits: &mut Bits) -> io::Result<u16> {
        let value = self.lookup(bits)?;
        bits.drop_bits(value >> 9 & 0xf);
        Ok(value as u16 & 0x1ff)
    }

    /// Decodes one symbol and skips the extra bits that follow it. Call after `refill`.
    #[inline]
    fn decode_skipping_extra(&self, bits: &mut Bits) -> io::Result<u16> {
        let value = self.lookup(bits)?;
        bits.drop_bits(value >> 13);
        Ok(value as u16 & 0x1ff)
    }

    #[inline]
    fn lookup(&self, bits: &Bits) -> io::Result<u32> {
        let value = self.table[(bits.peek() & ((1 << TABLE_BITS) - 1)) as usize];
        if value != 0 {
            return Ok(value);
        }
        self.lookup_long(bits.peek())
    }

    /// Decodes a code bit by bit, walking the canonical codes length by length (the method of zlib's "puff").
    #[cold]
    fn lookup_long(&self, peeked: u32) -> io::Result<u32> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for length in 1..16 {
            code |= ((peeked >> (length - 1)) & 1) as i32;
            let count = i32::from(self.count[length as usize]);
            if code - first < count {
                let symbol = self.sorted[(index + code - first) as usize];
                return Ok(entry(symbol, length, (self.extra_bits)(symbol)));
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(invalid("a bit pattern that is no code"))
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate stream: {what}"))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::DeflateDecoder;
    use libdeflater::{CompressionLvl, Compressor};

    use super::*;
    // Log lines (dynamic Huffman blocks with matches of every length and distance) and noise (stored blocks).
    use crate::parallel_gzip::tests::{noise, text};

    fn deflate(input: &[u8], level: i32) -> Vec<u8> {
        let mut compressor = Compressor::new(CompressionLvl::new(level).unwrap());
        let mut out = vec![0u8; compressor.deflate_compress_bound(input.len())];
        let len = compressor.deflate_compress(input, &mut out).unwrap();
        out.truncate(len);
        out
    }

    fn inflate(stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        DeflateDecoder::new(stream)
            .read_to_end(&mut out)
            .expect("a valid deflate stream");
        out
    }

    #[test]
    fn continued_streams_of_every_block_kind_chain_into_one_stream_of_their_inputs() {
        // Dynamic blocks (text, several of them at level 12), stored blocks (noise at level 0 and 6), the fixed
        // block libdeflate writes for a few bytes, and nothing at all.
        let pieces: Vec<(Vec<u8>, i32)> = vec![
            (text(300_000), 6),
            (noise(70_000), 6),
            (b"abc".to_vec(), 6),
            (Vec::new(), 6),
            (noise(100_000), 0),
            (text(2_000_000), 12),
            (text(50_000), 1),
        ];
        let mut chained = Vec::new();
        let mut expected = Vec::new();
        for (input, level) in &pieces {
            let mut stream = deflate(input, *level);
            make_continuable(&mut stream).unwrap();
            assert!(
                stream.ends_with(&[0, 0, 0xff, 0xff]),
                "ends with an empty stored block, as a sync flush does"
            );
            chained.extend_from_slice(&stream);
            expected.extend_from_slice(input);
        }
        let last = text(10_000);
        chained.extend_from_slice(&deflate(&last, 6));
        expected.extend_from_slice(&last);
        assert!(
            inflate(&chained) == expected,
            "the chained stream decodes to the inputs in order"
        );
    }

    #[test]
    fn a_continued_stream_alone_is_not_complete() {
        let mut stream = deflate(&text(10_000), 6);
        make_continuable(&mut stream).unwrap();
        let mut out = Vec::new();
        let result = DeflateDecoder::new(&stream[..]).read_to_end(&mut out);
        assert!(
            result.is_err() || out.is_empty(),
            "without a final block the stream does not end"
        );
    }

    #[test]
    fn a_cut_short_stream_is_refused_and_left_as_it_was() {
        let whole = deflate(&text(100_000), 6);
        for cut in [1, whole.len() / 3, whole.len() - 1] {
            let mut stream = whole[..cut].to_vec();
            let error = make_continuable(&mut stream).expect_err("a stream without its end");
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
            assert_eq!(stream, whole[..cut], "untouched");
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        for seed in 0..200u64 {
            let mut stream = noise(64 + seed as usize * 7);
            stream[0] = stream[0].wrapping_add(seed as u8);
            // Random bytes may even parse (a fixed block that soon meets its end code); the walk must come back
            // either way, without panicking, and say why it refused.
            if let Err(error) = make_continuable(&mut stream) {
                assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
            }
        }
        assert!(
            make_continuable(&mut Vec::new()).is_err(),
            "an empty stream has no final block"
        );
        assert!(make_continuable(&mut vec![0x07]).is_err(), "block type 3 is reserved");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Inputs of 0..64 KiB: random bytes, or runs of a few byte values (highly compressible).
        fn input() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64 * 1024),
                (proptest::collection::vec(any::<u8>(), 1..4), 0..64 * 1024usize)
                    .prop_map(|(alphabet, len)| { (0..len).map(|i| alphabet[(i / 97) % alphabet.len()]).collect() }),
            ]
        }

        proptest! {
            // 128 cases (a random input of 0..64 KiB, a short one to follow, and a level 0..=12: the levels libdeflate
            // takes), about 3 s in a debug build on a shared 2-core machine.
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn a_continued_stream_and_what_follows_decode_to_their_inputs(
                first in input(),
                second in proptest::collection::vec(any::<u8>(), 0..4096),
                level in 0i32..=12,
            ) {
                let mut stream = deflate(&first, level);
                make_continuable(&mut stream).unwrap();
                let alone = stream.clone();
                stream.extend_from_slice(&deflate(&second, level));

                prop_assert!(inflate(&stream) == [first.as_slice(), second.as_slice()].concat());
                // With only an empty final block after it, the continued stream is its input alone.
                let mut ended = alone;
                ended.extend_from_slice(&deflate(&[], 6));
                prop_assert!(inflate(&ended) == first);
            }
        }
    }
}
