//! The few DER operations the MSP needs beyond `x509-parser`: walking the
//! outer `Certificate` SEQUENCE, reading and writing ECDSA `(r, s)` pairs,
//! and big-endian subtraction for low-S normalisation. Every function is
//! total on arbitrary input (returns `None` instead of panicking).

/// One TLV: `(tag, header length, content length)`.
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (hlen, len) = if first < 0x80 {
        (2, first)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (2 + n, len)
    };
    if input.len() < hlen.checked_add(len)? {
        return None;
    }
    Some((tag, hlen, len))
}

/// Encodes a DER length.
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A DER TLV with the given tag and content.
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// Splits a DER `Certificate` / `CertificateList` into its three raw
/// elements (to-be-signed, algorithm identifier, signature BIT STRING).
pub(crate) fn split_signed(der: &[u8]) -> Option<[&[u8]; 3]> {
    let (tag, h, len) = tlv(der)?;
    if tag != 0x30 || h + len != der.len() {
        return None;
    }
    let mut rest = &der[h..];
    let mut parts: [&[u8]; 3] = [&[]; 3];
    for part in parts.iter_mut() {
        let (_, h, len) = tlv(rest)?;
        *part = &rest[..h + len];
        rest = &rest[h + len..];
    }
    if !rest.is_empty() {
        return None;
    }
    Some(parts)
}

/// Parses an ECDSA signature `SEQUENCE { INTEGER r, INTEGER s }` and
/// returns the magnitudes of `r` and `s` (leading zeros removed). Both must
/// be strictly positive, and nothing may follow the sequence.
pub(crate) fn ecdsa_sig(sig: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (tag, h, len) = tlv(sig)?;
    if tag != 0x30 || h + len != sig.len() {
        return None;
    }
    let mut rest = &sig[h..];
    let mut ints = Vec::with_capacity(2);
    for _ in 0..2 {
        let (tag, h, len) = tlv(rest)?;
        if tag != 0x02 || len == 0 {
            return None;
        }
        let body = &rest[h..h + len];
        if body[0] & 0x80 != 0 {
            return None; // negative
        }
        let z = body.iter().take_while(|b| **b == 0).count();
        if z == body.len() {
            return None; // zero
        }
        ints.push(body[z..].to_vec());
        rest = &rest[h + len..];
    }
    if !rest.is_empty() {
        return None;
    }
    let s = ints.pop()?;
    let r = ints.pop()?;
    Some((r, s))
}

fn int_content(mag: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(mag.len() + 1);
    if mag.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(mag);
    v
}

/// Minimal DER encoding of `(r, s)` magnitudes.
pub(crate) fn encode_ecdsa_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut body = encode(0x02, &int_content(r));
    body.extend(encode(0x02, &int_content(s)));
    encode(0x30, &body)
}

/// Compares two big-endian magnitudes (no leading zeros needed).
pub(crate) fn cmp_mag(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let a = &a[a.iter().take_while(|x| **x == 0).count()..];
    let b = &b[b.iter().take_while(|x| **x == 0).count()..];
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `a - b` for big-endian magnitudes with `a >= b`, leading zeros removed.
pub(crate) fn sub_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in 0..a.len() {
        let ai = a[a.len() - 1 - i] as i16;
        let bi = if i < b.len() {
            b[b.len() - 1 - i] as i16
        } else {
            0
        };
        let mut d = ai - bi - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        let n = out.len();
        out[n - 1 - i] = d as u8;
    }
    let z = out.iter().take_while(|x| **x == 0).count();
    out.drain(..z);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_round_trip_and_sub() {
        let sig = encode_ecdsa_sig(&[0x80, 1], &[5]);
        assert_eq!(
            sig,
            vec![0x30, 0x08, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x01, 0x05]
        );
        assert_eq!(ecdsa_sig(&sig), Some((vec![0x80, 1], vec![5])));
        assert_eq!(sub_mag(&[1, 0, 0], &[1]), vec![0xff, 0xff]);
        assert_eq!(cmp_mag(&[0, 0, 5], &[5]), std::cmp::Ordering::Equal);
        let mut long = Vec::new();
        push_len(&mut long, 300);
        assert_eq!(long, vec![0x82, 0x01, 0x2c]);
    }

    proptest::proptest! {
        #[test]
        fn total_on_arbitrary_bytes(bytes in proptest::collection::vec(0u8.., 0..300)) {
            let _ = tlv(&bytes);
            let _ = split_signed(&bytes);
            let _ = ecdsa_sig(&bytes);
        }
    }
}
