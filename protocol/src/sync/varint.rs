//! The one variable-length integer of sync messages: unsigned LEB128, minimal form only.
//!
//! Seven bits per byte, least significant group first, the high bit set on every byte but
//! the last. At most 10 bytes; a value has exactly one accepted spelling (no trailing
//! `0x80 … 0x00` padding), so an encoded message has exactly one decoding and back.

/// The most bytes a `u64` takes.
pub(super) const MAX_VARINT_LEN: usize = 10;

/// Appends `value` in minimal LEB128.
pub(super) fn write(buf: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf.push(low);
            return;
        }
        buf.push(low | 0x80);
    }
}

/// How many bytes [`write`] uses for `value`.
pub(super) const fn len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    if bits == 0 {
        1
    } else {
        bits.div_ceil(7)
    }
}

/// Why a varint was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VarintError {
    /// The input ended before the last byte (one without the high bit).
    Truncated,
    /// A longer spelling than needed (a final `0x00` group after the first byte).
    NotMinimal,
    /// More than 64 bits.
    Overflow,
}

/// Reads one varint from the front of `bytes`, returning it and the bytes it used.
pub(super) fn read(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(MAX_VARINT_LEN) {
        let group = u64::from(byte & 0x7f);
        // The tenth byte holds bit 63 only.
        if i == MAX_VARINT_LEN - 1 && byte > 0x01 {
            return Err(VarintError::Overflow);
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(VarintError::NotMinimal);
            }
            return Ok((value, i + 1));
        }
    }
    if bytes.len() >= MAX_VARINT_LEN {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for value in [
            0,
            1,
            127,
            128,
            255,
            16_383,
            16_384,
            1_700_000_000_000,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            write(&mut buf, value);
            assert_eq!(buf.len(), len(value), "{value}");
            assert_eq!(read(&buf), Ok((value, buf.len())), "{value}");
        }
    }

    #[test]
    fn known_spellings() {
        let mut buf = Vec::new();
        write(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
        buf.clear();
        write(&mut buf, u64::MAX);
        assert_eq!(
            buf,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn refuses_bad_forms() {
        assert_eq!(read(&[]), Err(VarintError::Truncated));
        assert_eq!(read(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read(&[0x80, 0x00]), Err(VarintError::NotMinimal));
        assert_eq!(read(&[0x81, 0x80, 0x00]), Err(VarintError::NotMinimal));
        assert_eq!(read(&[0xff; 10]), Err(VarintError::Overflow));
        assert_eq!(
            read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(VarintError::Overflow)
        );
        assert_eq!(read(&[0xff; 11]), Err(VarintError::Overflow));
    }
}
