//! Fabric's block header hash, for verifying the `previous_hash` chain.
//!
//! This is the same function as `fabric_common::block::header_hash` (Fabric's
//! `protoutil.BlockHeaderHash`): SHA-256 over the DER encoding of
//! `SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash }`.
//! It lives here privately so the ledger does not depend on `fabric-common`.

use fabric_protos::common::BlockHeader;
use sha2::{Digest, Sha256};

/// DER tag of a SEQUENCE (constructed).
const DER_TAG_SEQUENCE: u8 = 0x30;
/// DER tag of an INTEGER.
const DER_TAG_INTEGER: u8 = 0x02;
/// DER tag of an OCTET STRING.
const DER_TAG_OCTET_STRING: u8 = 0x04;

/// SHA-256 of the DER-encoded block header.
pub(crate) fn header_hash(header: &BlockHeader) -> [u8; 32] {
    Sha256::digest(header_der(header)).into()
}

/// The DER encoding of the header, as Go's `asn1.Marshal` writes it.
pub(crate) fn header_der(header: &BlockHeader) -> Vec<u8> {
    let mut content =
        Vec::with_capacity(16 + header.previous_hash.len() + header.data_hash.len() + 2 * 9);
    der_u64(header.number, &mut content);
    der_octet_string(&header.previous_hash, &mut content);
    der_octet_string(&header.data_hash, &mut content);

    let mut out = Vec::with_capacity(content.len() + 10);
    out.push(DER_TAG_SEQUENCE);
    der_length(content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}

/// An unsigned number as a DER INTEGER: minimal big-endian two's complement,
/// so a leading 0x00 is kept when the high bit of the first byte is set.
fn der_u64(value: u64, out: &mut Vec<u8>) {
    let bytes = value.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let digits = &bytes[first..];
    let pad = digits[0] & 0x80 != 0;
    out.push(DER_TAG_INTEGER);
    der_length(digits.len() + usize::from(pad), out);
    if pad {
        out.push(0x00);
    }
    out.extend_from_slice(digits);
}

fn der_octet_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(DER_TAG_OCTET_STRING);
    der_length(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// DER length: short form below 128, else 0x80 | byte count, then the
/// minimal big-endian length.
fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .expect("len >= 0x80 is non-zero");
    let digits = &bytes[first..];
    assert!(digits.len() <= 8);
    out.push(0x80 | digits.len() as u8);
    out.extend_from_slice(digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn fabric_test_vector() {
        let data_hash = Sha256::digest([0u8, 1, 2]).to_vec();
        assert_eq!(
            hex(&data_hash),
            "ae4b3280e56e2faf83f414a6e3dabe9d5fbe18976544c05fed121accb85b53fc"
        );
        let header = BlockHeader {
            number: 0,
            previous_hash: b"datahash".to_vec(),
            data_hash,
        };
        let der = header_der(&header);
        assert_eq!(&der[..7], &[0x30, 0x2f, 0x02, 0x01, 0x00, 0x04, 0x08]);
        assert_eq!(der.len(), 0x2f + 2);
        assert_eq!(
            hex(&header_hash(&header)),
            "7d9bf4ccd0665d7ebec25ea15ad7872bb1b5392858fd7f21123b69e1a057d8ee"
        );
    }

    #[test]
    fn integers_are_minimal_twos_complement() {
        let cases: [(u64, &[u8]); 6] = [
            (0, &[0x02, 0x01, 0x00]),
            (0x7f, &[0x02, 0x01, 0x7f]),
            (0x80, &[0x02, 0x02, 0x00, 0x80]),
            (0x0100, &[0x02, 0x02, 0x01, 0x00]),
            (
                u64::MAX,
                &[
                    0x02, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
            ),
            (
                1 << 56,
                &[0x02, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            ),
        ];
        for (value, want) in cases {
            let mut out = Vec::new();
            der_u64(value, &mut out);
            assert_eq!(out, want, "value {value:#x}");
        }
    }

    #[test]
    fn lengths_use_long_form_from_128() {
        let mut out = Vec::new();
        der_length(127, &mut out);
        assert_eq!(out, [0x7f]);
        out.clear();
        der_length(128, &mut out);
        assert_eq!(out, [0x81, 0x80]);
        out.clear();
        der_length(0x1234, &mut out);
        assert_eq!(out, [0x82, 0x12, 0x34]);
    }
}
