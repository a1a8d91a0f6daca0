//! An `Envelope`'s bytes as Fabric's Go orderer sees them.
//!
//! Fabric decodes a received envelope with golang/protobuf and marshals it
//! again before it orders it (`chain.Order` → `proto.Marshal`), so the bytes
//! in a block are Go's re-encoding of what the client sent: the known fields
//! (`payload` = 1, `signature` = 2) in field order, each once (the last
//! occurrence wins) and only when non-empty, then every field `Envelope` does
//! not define, byte for byte in the order received. A known field number
//! with another wire type is kept as an unknown field, as golang/protobuf
//! does. [`EnvelopeWire::go_marshal`] gives those bytes; for the usual
//! envelope (already in that form) they are the received bytes themselves.
//!
//! The Kafka block cutter counts `len(Payload) + len(Signature)` of the
//! decoded envelope ([`EnvelopeWire::size`]).

use std::borrow::Cow;

use prost::encoding::{
    decode_key, decode_varint, encode_key, encode_varint, skip_field, DecodeContext, WireType,
};

const PAYLOAD: u32 = 1;
const SIGNATURE: u32 = 2;

/// The top-level fields of an envelope's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeWire<'a> {
    /// The last `payload` field's value.
    pub payload: &'a [u8],
    /// The last `signature` field's value.
    pub signature: &'a [u8],
    /// Every other field (key and value), in the order received.
    pub unknown: Vec<&'a [u8]>,
    raw: &'a [u8],
    /// `raw` is already what Go writes: the known fields in order, each
    /// once, non-empty, minimally encoded, and nothing else.
    canonical: bool,
}

/// Why bytes are not an envelope (golang/protobuf would refuse them too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Envelope: {0}")]
pub struct WireError(String);

impl<'a> EnvelopeWire<'a> {
    /// Walks `raw`'s top-level fields.
    pub fn parse(raw: &'a [u8]) -> Result<Self, WireError> {
        let mut buf = raw;
        let mut w = EnvelopeWire {
            payload: &[],
            signature: &[],
            unknown: Vec::new(),
            raw,
            canonical: true,
        };
        let mut last_known = 0;
        let err = |e: prost::DecodeError| WireError(e.to_string());
        while !buf.is_empty() {
            let start = raw.len() - buf.len();
            let (tag, wire_type) = decode_key(&mut buf).map_err(err)?;
            if wire_type == WireType::LengthDelimited && (tag == PAYLOAD || tag == SIGNATURE) {
                let key_len = raw.len() - buf.len() - start;
                let before_len = buf.len();
                let len = decode_varint(&mut buf).map_err(err)?;
                let len_len = before_len - buf.len();
                w.canonical &= key_len == 1
                    && tag > last_known
                    && len > 0
                    && len_len == prost::encoding::encoded_len_varint(len);
                last_known = tag;
                if len > buf.len() as u64 {
                    return Err(WireError(format!(
                        "field {tag} claims {len} bytes, {} left",
                        buf.len()
                    )));
                }
                let (value, rest) = buf.split_at(len as usize);
                *(if tag == PAYLOAD {
                    &mut w.payload
                } else {
                    &mut w.signature
                }) = value;
                buf = rest;
            } else {
                skip_field(wire_type, tag, &mut buf, DecodeContext::default()).map_err(err)?;
                w.unknown.push(&raw[start..raw.len() - buf.len()]);
                w.canonical = false;
            }
        }
        Ok(w)
    }

    /// `len(Payload) + len(Signature)`, what Fabric's block cutter counts.
    pub fn size(&self) -> u64 {
        (self.payload.len() + self.signature.len()) as u64
    }

    /// The bytes Fabric's orderer puts into a block for this envelope.
    pub fn go_marshal(&self) -> Cow<'a, [u8]> {
        if self.canonical {
            return Cow::Borrowed(self.raw);
        }
        let mut out = Vec::with_capacity(self.raw.len());
        for (tag, value) in [(PAYLOAD, self.payload), (SIGNATURE, self.signature)] {
            if !value.is_empty() {
                encode_key(tag, WireType::LengthDelimited, &mut out);
                encode_varint(value.len() as u64, &mut out);
                out.extend_from_slice(value);
            }
        }
        for u in &self.unknown {
            out.extend_from_slice(u);
        }
        if out == self.raw {
            Cow::Borrowed(self.raw)
        } else {
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use fabric_protos::common::Envelope;
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    fn env(payload: &[u8], signature: &[u8]) -> Vec<u8> {
        Envelope {
            payload: payload.to_vec(),
            signature: signature.to_vec(),
        }
        .encode_to_vec()
    }

    #[test]
    fn a_canonical_envelope_is_kept_as_received() {
        let raw = env(b"payload", b"sig");
        let w = EnvelopeWire::parse(&raw).unwrap();
        assert!(matches!(w.go_marshal(), Cow::Borrowed(_)));
        assert_eq!(w.size(), 10);
    }

    #[test]
    fn unknown_fields_are_kept_after_the_known_ones_in_the_order_received() {
        let mut raw = vec![0x1a, 2, b'u', b'1']; // field 3 first
        raw.extend(env(b"p", b"s"));
        raw.extend([0x20, 0x07]); // field 4, varint
        let w = EnvelopeWire::parse(&raw).unwrap();
        let mut want = env(b"p", b"s");
        want.extend([0x1a, 2, b'u', b'1', 0x20, 0x07]);
        assert_eq!(w.go_marshal().into_owned(), want);
        // prost decodes the same known fields.
        let d = Envelope::decode(raw.as_slice()).unwrap();
        assert_eq!(
            (d.payload.as_slice(), d.signature.as_slice()),
            (w.payload, w.signature)
        );
    }

    #[test]
    fn fields_out_of_order_repeated_or_empty_are_written_as_go_writes_them() {
        // signature before payload, payload twice (the last wins), an empty field
        let raw = [0x12, 1, b's', 0x0a, 1, b'x', 0x0a, 2, b'p', b'q', 0x0a, 0];
        let w = EnvelopeWire::parse(&raw).unwrap();
        // The last payload is the empty one: Go omits an empty bytes field.
        assert_eq!(w.go_marshal().into_owned(), vec![0x12, 1, b's']);
        assert_eq!(w.size(), 1);
        // A known number with another wire type is an unknown field.
        let raw = [0x0a, 1, b'p', 0x10, 0x05];
        let w = EnvelopeWire::parse(&raw).unwrap();
        assert_eq!(w.unknown, vec![&[0x10, 0x05][..]]);
        assert_eq!(w.go_marshal().as_ref(), &raw[..]);
        // A length written with more bytes than needed is written minimally.
        let raw = [0x0a, 0x81, 0x00, b'p'];
        let w = EnvelopeWire::parse(&raw).unwrap();
        assert_eq!(w.go_marshal().into_owned(), vec![0x0a, 1, b'p']);
    }

    #[test]
    fn truncated_bytes_are_refused() {
        assert!(EnvelopeWire::parse(&[0x0a, 5, 1]).is_err());
        assert!(EnvelopeWire::parse(&[0x0a]).is_err());
        assert!(EnvelopeWire::parse(&[0x1b]).is_err()); // a group never closed
        assert_eq!(EnvelopeWire::parse(&[]).unwrap().size(), 0);
    }

    proptest! {
        #[test]
        fn go_marshal_decodes_to_what_prost_decodes_and_is_stable(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            signature in proptest::collection::vec(any::<u8>(), 0..64),
            extra in proptest::collection::vec((3u32..50, proptest::collection::vec(any::<u8>(), 0..8)), 0..4),
        ) {
            let mut raw = Vec::new();
            for (tag, v) in &extra {
                encode_key(*tag, WireType::LengthDelimited, &mut raw);
                encode_varint(v.len() as u64, &mut raw);
                raw.extend_from_slice(v);
            }
            raw.extend(env(&payload, &signature));
            let w = EnvelopeWire::parse(&raw).unwrap();
            let out = w.go_marshal().into_owned();
            let d = Envelope::decode(out.as_slice()).unwrap();
            prop_assert_eq!(&d.payload, &payload);
            prop_assert_eq!(&d.signature, &signature);
            // The shortcut for canonical bytes agrees with building them.
            prop_assert_eq!(w.canonical, out == raw);
            // Marshalling Go's bytes again changes nothing.
            let again = EnvelopeWire::parse(&out).unwrap();
            prop_assert!(matches!(again.go_marshal(), Cow::Borrowed(_)));
            prop_assert_eq!(again.unknown.len(), extra.len());
        }
    }
}
