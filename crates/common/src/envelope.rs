//! Envelopes as Fabric builds them (`protoutil.CreateSignedEnvelope`,
//! `MakeChannelHeader`, `ComputeTxID`).

use std::time::{SystemTime, UNIX_EPOCH};

use fabric_protos::common::{ChannelHeader, Envelope, Header, HeaderType, Payload};
use fabric_protos::orderer::{seek_position, SeekInfo, SeekPosition, SeekSpecified};
use fabric_protos::Timestamp;
use prost::Message;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::msp::LocalSigner;

/// Fabric's nonce size in bytes.
pub const NONCE_SIZE: usize = 24;

/// 24 random bytes.
pub fn new_nonce() -> Vec<u8> {
    let mut n = vec![0u8; NONCE_SIZE];
    rand::rng().fill_bytes(&mut n);
    n
}

/// `hex(SHA-256(nonce || creator))`.
pub fn compute_txid(nonce: &[u8], creator: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(nonce);
    h.update(creator);
    hex::encode(h.finalize())
}

/// Seconds-resolution timestamp for now (Fabric's `MakeChannelHeader` uses nanos 0).
pub fn now_timestamp() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp {
        seconds: secs as i64,
        nanos: 0,
    }
}

/// A channel header like Fabric's `MakeChannelHeader`.
pub fn channel_header(
    header_type: HeaderType,
    version: i32,
    channel_id: &str,
    epoch: u64,
) -> ChannelHeader {
    ChannelHeader {
        r#type: header_type as i32,
        version,
        timestamp: Some(now_timestamp()),
        channel_id: channel_id.to_string(),
        epoch,
        ..Default::default()
    }
}

/// Options for [`create_signed_envelope`].
#[derive(Debug, Clone, Default)]
pub struct EnvelopeOptions {
    /// Message version (channel header `version`).
    pub version: i32,
    /// Channel header `epoch`.
    pub epoch: u64,
    /// Set `tx_id = hex(SHA-256(nonce || creator))` (Fabric leaves it empty
    /// for orderer-made and sample-client envelopes).
    pub with_txid: bool,
    /// SHA-256 of the client's TLS certificate, for Deliver binding.
    pub tls_cert_hash: Vec<u8>,
}

/// A signed envelope of `header_type` on `channel_id` carrying `data`.
/// Without a signer the signature header has no creator and the envelope no signature.
pub fn create_signed_envelope(
    header_type: HeaderType,
    channel_id: &str,
    signer: Option<&LocalSigner>,
    data: Vec<u8>,
    opts: &EnvelopeOptions,
) -> Envelope {
    let mut ch = channel_header(header_type, opts.version, channel_id, opts.epoch);
    ch.tls_cert_hash = opts.tls_cert_hash.clone();
    let sh = match signer {
        Some(s) => s.new_signature_header(),
        None => fabric_protos::common::SignatureHeader {
            creator: vec![],
            nonce: new_nonce(),
        },
    };
    if opts.with_txid {
        ch.tx_id = compute_txid(&sh.nonce, &sh.creator);
    }
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: sh.encode_to_vec(),
        }),
        data,
    }
    .encode_to_vec();
    let signature = signer.map(|s| s.sign(&payload)).unwrap_or_default();
    Envelope { payload, signature }
}

/// A seek position for block `n`.
pub fn seek_specified(n: u64) -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Specified(SeekSpecified { number: n })),
    }
}

/// The oldest block.
pub fn seek_oldest() -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Oldest(Default::default())),
    }
}

/// The newest block.
pub fn seek_newest() -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Newest(Default::default())),
    }
}

/// A signed DELIVER_SEEK_INFO envelope.
pub fn seek_envelope(
    channel_id: &str,
    signer: Option<&LocalSigner>,
    seek: &SeekInfo,
    tls_cert_hash: Vec<u8>,
) -> Envelope {
    create_signed_envelope(
        HeaderType::DeliverSeekInfo,
        channel_id,
        signer,
        seek.encode_to_vec(),
        &EnvelopeOptions {
            tls_cert_hash,
            ..Default::default()
        },
    )
}

/// The decoded headers of an envelope.
#[derive(Debug, Clone)]
pub struct ParsedEnvelope {
    /// The payload.
    pub payload: Payload,
    /// The channel header.
    pub channel_header: ChannelHeader,
    /// The signature header.
    pub signature_header: fabric_protos::common::SignatureHeader,
}

/// Why an envelope's headers do not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// `Envelope.payload` is not a `Payload`.
    #[error("bad payload: {0}")]
    Payload(String),
    /// The payload has no header.
    #[error("missing header")]
    MissingHeader,
    /// `Header.channel_header` is not a `ChannelHeader`.
    #[error("bad channel header: {0}")]
    ChannelHeader(String),
    /// `Header.signature_header` is not a `SignatureHeader`.
    #[error("bad signature header: {0}")]
    SignatureHeader(String),
}

/// Decodes `Payload`, `ChannelHeader` and `SignatureHeader` of an envelope.
pub fn parse_envelope(env: &Envelope) -> Result<ParsedEnvelope, EnvelopeError> {
    let payload = Payload::decode(env.payload.as_slice())
        .map_err(|e| EnvelopeError::Payload(e.to_string()))?;
    let header = payload
        .header
        .as_ref()
        .ok_or(EnvelopeError::MissingHeader)?;
    let channel_header = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| EnvelopeError::ChannelHeader(e.to_string()))?;
    let signature_header =
        fabric_protos::common::SignatureHeader::decode(header.signature_header.as_slice())
            .map_err(|e| EnvelopeError::SignatureHeader(e.to_string()))?;
    Ok(ParsedEnvelope {
        payload,
        channel_header,
        signature_header,
    })
}
