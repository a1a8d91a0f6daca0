//! Channel administration the way `peer channel create | update | fetch`
//! does it against an orderer:
//!
//! * [`parse_config_tx`] / [`open_config_update_tx`]: read a config
//!   transaction (the CONFIG_UPDATE envelope `configtxgen
//!   -outputCreateChannelTx` writes, or a bare `ConfigUpdateEnvelope` /
//!   `ConfigUpdate`) and check it as `peer channel create` does before
//!   signing (type CONFIG_UPDATE, non-empty channel ID, a decodable
//!   `ConfigUpdateEnvelope`);
//! * [`config_signature`] / [`signed_config_update_tx`]: append the signers'
//!   `ConfigSignature`s (`signature = sign(signature_header ‖ config_update)`)
//!   and wrap the result in a new CONFIG_UPDATE envelope signed by the
//!   submitting identity;
//! * [`broadcast_envelope`], [`try_fetch_block`], [`wait_for_block`],
//!   [`fetch_config_block`]: the network side (one Broadcast, single-block
//!   Deliver requests, polling for a new channel's genesis block);
//! * [`config_from_block`], [`batch_size_update`]: read a channel's config
//!   from its config block and build the update that changes
//!   `Orderer/BatchSize.MaxMessageCount`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fabric_common::block::last_config_index;
use fabric_common::envelope::{create_signed_envelope, EnvelopeOptions};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{
    Block, ChannelHeader, Config, ConfigEnvelope, ConfigGroup, ConfigSignature, ConfigUpdate,
    ConfigUpdateEnvelope, ConfigValue, Envelope, HeaderType, Payload, Status,
};
use fabric_protos::orderer::{BatchSize, BroadcastResponse};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::conn::{connect, Client};
use crate::deliver::{seek_info, DeliverItem, DeliverSession, Position};
use crate::status_name;

/// Name of the orderer group in a channel config.
pub const ORDERER_GROUP: &str = "Orderer";
/// Name of the batch size value in the orderer group.
pub const BATCH_SIZE_KEY: &str = "BatchSize";

/// Why a config transaction or config block is not usable.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigTxError {
    /// `Envelope.payload` is not a `Payload`.
    #[error("invalid config transaction: bad payload: {0}")]
    BadPayload(String),
    /// The payload has no header, or the header no channel header.
    #[error("invalid config transaction: bad header")]
    BadHeader,
    /// The channel header does not decode.
    #[error("invalid config transaction: could not unmarshal channel header: {0}")]
    BadChannelHeader(String),
    /// The envelope is not of the expected header type.
    #[error("invalid config transaction: bad type {found}, expected {expected}")]
    WrongType {
        /// The type found (symbolic name or number).
        found: String,
        /// The type expected.
        expected: &'static str,
    },
    /// The channel header names no channel.
    #[error("invalid config transaction: empty channel id")]
    EmptyChannelId,
    /// The transaction is for another channel than the one asked for.
    #[error("invalid config transaction: mismatched channel ID {found} != {expected}")]
    ChannelMismatch {
        /// The transaction's channel.
        found: String,
        /// The channel asked for (`-c/--channel`).
        expected: String,
    },
    /// `Payload.data` is not a `ConfigUpdateEnvelope`.
    #[error("invalid config transaction: bad config update envelope: {0}")]
    BadConfigUpdateEnvelope(String),
    /// `ConfigUpdateEnvelope.config_update` is not a `ConfigUpdate`.
    #[error("invalid config transaction: bad config update: {0}")]
    BadConfigUpdate(String),
    /// The `ConfigUpdate` names another channel than its envelope.
    #[error(
        "invalid config transaction: config update is for channel {update:?} but its envelope for {envelope:?}"
    )]
    UpdateChannelMismatch {
        /// `ConfigUpdate.channel_id`.
        update: String,
        /// The envelope's channel.
        envelope: String,
    },
    /// The bytes are none of the accepted forms.
    #[error(
        "not a config transaction: neither a CONFIG_UPDATE envelope, a ConfigUpdateEnvelope nor a ConfigUpdate"
    )]
    Unrecognized,
    /// The block does not hold a channel config.
    #[error("not a config block: {0}")]
    NotAConfigBlock(String),
    /// The config lacks something the update needs.
    #[error("channel config has no {0}")]
    Missing(String),
}

/// The form a config transaction file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigTxFormat {
    /// A CONFIG_UPDATE `Envelope` (configtxgen `-outputCreateChannelTx`,
    /// `configtxlator` + `peer channel signconfigtx`).
    Envelope,
    /// A bare `ConfigUpdateEnvelope`.
    ConfigUpdateEnvelope,
    /// A bare `ConfigUpdate` (no signatures yet).
    ConfigUpdate,
}

/// A decoded config transaction, ready to be signed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigTx {
    /// The channel it applies to (the envelope's, else the `ConfigUpdate`'s).
    pub channel_id: String,
    /// The update with the signatures collected so far.
    pub envelope: ConfigUpdateEnvelope,
    /// What the input was.
    pub format: ConfigTxFormat,
}

impl ConfigTx {
    /// Fails unless the transaction is for `expected`.
    pub fn check_channel(&self, expected: &str) -> Result<(), ConfigTxError> {
        if self.channel_id != expected {
            return Err(ConfigTxError::ChannelMismatch {
                found: self.channel_id.clone(),
                expected: expected.to_string(),
            });
        }
        Ok(())
    }
}

fn header_type_name(t: i32) -> String {
    match HeaderType::try_from(t) {
        Ok(h) => h.as_str_name().to_string(),
        Err(_) => t.to_string(),
    }
}

/// The decoded `ChannelHeader` of an envelope payload (errors as Fabric's
/// `sanityCheckAndSignConfigTx` names them).
fn payload_channel_header(env: &Envelope) -> Result<(Payload, ChannelHeader), ConfigTxError> {
    let payload = Payload::decode(env.payload.as_slice())
        .map_err(|e| ConfigTxError::BadPayload(e.to_string()))?;
    let header = payload.header.as_ref().ok_or(ConfigTxError::BadHeader)?;
    if header.channel_header.is_empty() {
        return Err(ConfigTxError::BadHeader);
    }
    let ch = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| ConfigTxError::BadChannelHeader(e.to_string()))?;
    Ok((payload, ch))
}

/// Decodes `ConfigUpdateEnvelope.config_update`, requiring it to name `channel`
/// (when given) or at least some channel.
fn decode_config_update(
    cue: &ConfigUpdateEnvelope,
    channel: Option<&str>,
) -> Result<ConfigUpdate, ConfigTxError> {
    let cu = ConfigUpdate::decode(cue.config_update.as_slice())
        .map_err(|e| ConfigTxError::BadConfigUpdate(e.to_string()))?;
    match channel {
        Some(ch) if cu.channel_id != ch => Err(ConfigTxError::UpdateChannelMismatch {
            update: cu.channel_id,
            envelope: ch.to_string(),
        }),
        None if cu.channel_id.is_empty() => Err(ConfigTxError::EmptyChannelId),
        _ => Ok(cu),
    }
}

/// The checks `peer channel create|update` make on a CONFIG_UPDATE envelope
/// before signing it: a payload with a channel header of type CONFIG_UPDATE
/// and a non-empty channel ID, and data that is a `ConfigUpdateEnvelope`
/// (whose `ConfigUpdate` must be for the same channel, as the orderer will
/// require). Returns the channel ID and the `ConfigUpdateEnvelope`.
pub fn open_config_update_tx(
    env: &Envelope,
) -> Result<(String, ConfigUpdateEnvelope), ConfigTxError> {
    let (payload, ch) = payload_channel_header(env)?;
    if ch.r#type != HeaderType::ConfigUpdate as i32 {
        return Err(ConfigTxError::WrongType {
            found: header_type_name(ch.r#type),
            expected: HeaderType::ConfigUpdate.as_str_name(),
        });
    }
    if ch.channel_id.is_empty() {
        return Err(ConfigTxError::EmptyChannelId);
    }
    let cue = ConfigUpdateEnvelope::decode(payload.data.as_slice())
        .map_err(|e| ConfigTxError::BadConfigUpdateEnvelope(e.to_string()))?;
    decode_config_update(&cue, Some(&ch.channel_id))?;
    Ok((ch.channel_id, cue))
}

/// A bare `ConfigUpdate` is accepted only with a channel ID and a write set.
fn strict_config_update(bytes: &[u8]) -> Option<ConfigUpdate> {
    ConfigUpdate::decode(bytes)
        .ok()
        .filter(|cu| !cu.channel_id.is_empty() && cu.write_set.is_some())
}

/// Reads a config transaction file: a CONFIG_UPDATE envelope (checked with
/// [`open_config_update_tx`]), a bare `ConfigUpdateEnvelope` or a bare
/// `ConfigUpdate` (both need a channel ID and a write set in the update).
/// Protobuf has no type tags, so the envelope form is tried first; bytes
/// that look like an envelope but fail its checks report why.
pub fn parse_config_tx(bytes: &[u8]) -> Result<ConfigTx, ConfigTxError> {
    let as_envelope = Envelope::decode(bytes).ok();
    let envelope_err = match as_envelope.as_ref().map(open_config_update_tx) {
        Some(Ok((channel_id, envelope))) => {
            return Ok(ConfigTx {
                channel_id,
                envelope,
                format: ConfigTxFormat::Envelope,
            })
        }
        Some(Err(e)) => Some(e),
        None => None,
    };
    if let Ok(cue) = ConfigUpdateEnvelope::decode(bytes) {
        if let Some(cu) = strict_config_update(&cue.config_update) {
            return Ok(ConfigTx {
                channel_id: cu.channel_id,
                envelope: cue,
                format: ConfigTxFormat::ConfigUpdateEnvelope,
            });
        }
    }
    if let Some(cu) = strict_config_update(bytes) {
        return Ok(ConfigTx {
            channel_id: cu.channel_id,
            envelope: ConfigUpdateEnvelope {
                config_update: bytes.to_vec(),
                signatures: Vec::new(),
            },
            format: ConfigTxFormat::ConfigUpdate,
        });
    }
    // Report the envelope check that failed when the bytes had a channel header.
    let looked_like_envelope = as_envelope
        .as_ref()
        .and_then(|env| payload_channel_header(env).ok())
        .is_some_and(|(_, ch)| ch.r#type != 0 || !ch.channel_id.is_empty());
    match envelope_err {
        Some(e) if looked_like_envelope => Err(e),
        _ => Err(ConfigTxError::Unrecognized),
    }
}

/// `signer`'s `ConfigSignature` over `config_update` (the marshaled
/// `ConfigUpdate`): `signature_header` is a fresh marshaled
/// `SignatureHeader{creator, nonce}` and `signature` is
/// `sign(signature_header ‖ config_update)`.
pub fn config_signature(signer: &LocalSigner, config_update: &[u8]) -> ConfigSignature {
    let signature_header = signer.new_signature_header().encode_to_vec();
    let mut msg = Vec::with_capacity(signature_header.len() + config_update.len());
    msg.extend_from_slice(&signature_header);
    msg.extend_from_slice(config_update);
    ConfigSignature {
        signature: signer.sign(&msg),
        signature_header,
    }
}

/// Appends `signer`'s [`config_signature`] to `cue`.
pub fn sign_config_update_envelope(cue: &mut ConfigUpdateEnvelope, signer: &LocalSigner) {
    let sig = config_signature(signer, &cue.config_update);
    cue.signatures.push(sig);
}

/// What `peer channel create|update` submit: `cue` with the co-signers'
/// and then `signer`'s `ConfigSignature`s appended, in a new CONFIG_UPDATE
/// envelope for `channel` signed by `signer`.
pub fn signed_config_update_tx(
    channel: &str,
    mut cue: ConfigUpdateEnvelope,
    cosigners: &[&LocalSigner],
    signer: &LocalSigner,
) -> Envelope {
    for s in cosigners {
        sign_config_update_envelope(&mut cue, s);
    }
    sign_config_update_envelope(&mut cue, signer);
    create_signed_envelope(
        HeaderType::ConfigUpdate,
        channel,
        Some(signer),
        cue.encode_to_vec(),
        &EnvelopeOptions::default(),
    )
}

/// Parses `MSPDIR:MSPID` (split at the last colon) and loads that identity.
pub fn load_signer_spec(spec: &str) -> Result<LocalSigner> {
    let (dir, mspid) = spec
        .rsplit_once(':')
        .filter(|(d, m)| !d.is_empty() && !m.is_empty())
        .ok_or_else(|| anyhow!("{spec:?}: expected MSPDIR:MSPID"))?;
    LocalSigner::load(std::path::Path::new(dir), mspid)
        .with_context(|| format!("loading the signing identity from {dir}"))
}

/// Signs `cue` as [`signed_config_update_tx`] does and broadcasts it; returns
/// the orderer's answer (SUCCESS only means the update was accepted for
/// ordering).
pub async fn submit_config_update(
    client: &mut Client,
    channel: &str,
    cue: ConfigUpdateEnvelope,
    cosigners: &[&LocalSigner],
    signer: &LocalSigner,
) -> Result<BroadcastResponse> {
    let env = signed_config_update_tx(channel, cue, cosigners, signer);
    broadcast_envelope(client, env).await
}

/// Sends one envelope on a new Broadcast stream and returns the orderer's answer.
pub async fn broadcast_envelope(client: &mut Client, env: Envelope) -> Result<BroadcastResponse> {
    broadcast_envelopes(client, vec![env])
        .await?
        .pop()
        .ok_or_else(|| anyhow!("the orderer closed the Broadcast stream without a response"))
}

/// Sends envelopes on one Broadcast stream, pipelined, and returns the
/// orderer's answers (fewer when it ended the stream after a failure).
pub async fn broadcast_envelopes(
    client: &mut Client,
    envs: Vec<Envelope>,
) -> Result<Vec<BroadcastResponse>> {
    let n = envs.len();
    let (tx, rx) = mpsc::channel(n.max(1));
    for env in envs {
        tx.send(env)
            .await
            .map_err(|_| anyhow!("broadcast request channel closed"))?;
    }
    let mut stream = client
        .broadcast(ReceiverStream::new(rx))
        .await
        .context("Broadcast RPC failed")?
        .into_inner();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match stream.message().await.context("Broadcast stream failed")? {
            Some(r) => out.push(r),
            None => break,
        }
    }
    drop(tx);
    Ok(out)
}

/// The outcome of a single-block Deliver request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The block.
    Block(Box<Block>),
    /// A status instead of a block (e.g. NOT_FOUND for an unknown channel).
    Status(i32),
}

/// Requests block `pos` of `channel` (start = stop, BLOCK_UNTIL_READY) and
/// returns the block, or the status the orderer answered with instead.
pub async fn try_fetch_block(
    client: &mut Client,
    channel: &str,
    signer: &LocalSigner,
    pos: Position,
) -> Result<Fetched> {
    let info = seek_info(pos, pos, false, false);
    let mut s = DeliverSession::seek(client, channel, signer, &info).await?;
    match s.next().await? {
        DeliverItem::Block(b) => Ok(Fetched::Block(b)),
        DeliverItem::Status(st) => Ok(Fetched::Status(st)),
        DeliverItem::End => bail!("fetching block {pos:?} of {channel:?}: stream ended"),
    }
}

/// [`try_fetch_block`], treating a status as an error.
pub async fn fetch_block(
    client: &mut Client,
    channel: &str,
    signer: &LocalSigner,
    pos: Position,
) -> Result<Block> {
    match try_fetch_block(client, channel, signer, pos).await? {
        Fetched::Block(b) => Ok(*b),
        Fetched::Status(st) => bail!(
            "fetching block {pos:?} of {channel:?}: status {}",
            status_name(st)
        ),
    }
}

/// The block that the newest block's LAST_CONFIG points at (`peer channel
/// fetch config`).
pub async fn fetch_config_block(
    client: &mut Client,
    channel: &str,
    signer: &LocalSigner,
) -> Result<Block> {
    let newest = fetch_block(client, channel, signer, Position::Newest).await?;
    let n = newest.header.as_ref().map_or(0, |h| h.number);
    let lc = last_config_index(&newest)
        .ok_or_else(|| anyhow!("block {n} of {channel:?} records no LAST_CONFIG index"))?;
    if lc == n {
        return Ok(newest);
    }
    fetch_block(client, channel, signer, Position::Specified(lc)).await
}

/// A `peer channel fetch` target: `oldest`, `newest`, `config` or a block number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchTarget {
    /// The oldest block.
    Oldest,
    /// The newest block.
    Newest,
    /// The block the newest block's LAST_CONFIG points at.
    Config,
    /// A block number.
    Number(u64),
}

impl std::str::FromStr for FetchTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oldest" => Ok(FetchTarget::Oldest),
            "newest" => Ok(FetchTarget::Newest),
            "config" => Ok(FetchTarget::Config),
            n => n.parse().map(FetchTarget::Number).map_err(|_| {
                format!("fetch target illegal: {s:?} (expected oldest, newest, config or a number)")
            }),
        }
    }
}

impl std::fmt::Display for FetchTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchTarget::Oldest => f.write_str("oldest"),
            FetchTarget::Newest => f.write_str("newest"),
            FetchTarget::Config => f.write_str("config"),
            FetchTarget::Number(n) => write!(f, "{n}"),
        }
    }
}

impl FetchTarget {
    /// `peer channel fetch`'s default output file: `<channel>_<target>.block`.
    pub fn default_file(&self, channel: &str) -> String {
        format!("{channel}_{self}.block")
    }
}

/// Fetches `target` of `channel` (`peer channel fetch`).
pub async fn fetch(
    client: &mut Client,
    channel: &str,
    signer: &LocalSigner,
    target: FetchTarget,
) -> Result<Block> {
    match target {
        FetchTarget::Oldest => fetch_block(client, channel, signer, Position::Oldest).await,
        FetchTarget::Newest => fetch_block(client, channel, signer, Position::Newest).await,
        FetchTarget::Config => fetch_config_block(client, channel, signer).await,
        FetchTarget::Number(n) => {
            fetch_block(client, channel, signer, Position::Specified(n)).await
        }
    }
}

/// Whether a Deliver status means "the channel does not exist (yet)".
pub fn is_not_ready(status: i32) -> bool {
    status == Status::NotFound as i32 || status == Status::ServiceUnavailable as i32
}

/// Polls for block `number` of `channel` until `timeout` (a new channel is
/// created asynchronously after its creation transaction is accepted):
/// NOT_FOUND, SERVICE_UNAVAILABLE and connection failures are retried every
/// 200 ms on a fresh connection; other statuses fail at once.
pub async fn wait_for_block(
    server: &str,
    channel: &str,
    signer: &LocalSigner,
    number: u64,
    timeout: Duration,
) -> Result<Block> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt made");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timeout waiting for block {number} of channel {channel:?} (last: {last})");
        }
        let attempt = async {
            let mut client = connect(server).await?;
            try_fetch_block(&mut client, channel, signer, Position::Specified(number)).await
        };
        match tokio::time::timeout(left, attempt).await {
            Err(_) => last = "no answer".into(),
            Ok(Ok(Fetched::Block(b))) => return Ok(*b),
            Ok(Ok(Fetched::Status(st))) if is_not_ready(st) => last = status_name(st),
            Ok(Ok(Fetched::Status(st))) => bail!(
                "fetching block {number} of channel {channel:?}: status {}",
                status_name(st)
            ),
            Ok(Err(e)) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200).min(left)).await;
    }
}

/// The channel config held by a config block (`Envelope → Payload (CONFIG)
/// → ConfigEnvelope → Config`), and the channel it is for.
pub fn config_from_block(block: &Block) -> Result<(String, Config), ConfigTxError> {
    let bad = |m: String| ConfigTxError::NotAConfigBlock(m);
    let data = block
        .data
        .as_ref()
        .and_then(|d| d.data.first())
        .ok_or_else(|| bad("block has no data".into()))?;
    let env = Envelope::decode(data.as_slice()).map_err(|e| bad(format!("bad envelope: {e}")))?;
    let (payload, ch) =
        payload_channel_header(&env).map_err(|e| bad(format!("bad envelope: {e}")))?;
    if ch.r#type != HeaderType::Config as i32 {
        return Err(bad(format!(
            "envelope type {}, expected CONFIG",
            header_type_name(ch.r#type)
        )));
    }
    let ce = ConfigEnvelope::decode(payload.data.as_slice())
        .map_err(|e| bad(format!("bad config envelope: {e}")))?;
    let config = ce
        .config
        .ok_or_else(|| bad("config envelope has no config".into()))?;
    if config.channel_group.is_none() {
        return Err(bad("config has no channel group".into()));
    }
    Ok((ch.channel_id, config))
}

/// The current `Orderer/BatchSize` of a config.
pub fn batch_size(config: &Config) -> Result<BatchSize, ConfigTxError> {
    let value = config
        .channel_group
        .as_ref()
        .and_then(|g| g.groups.get(ORDERER_GROUP))
        .ok_or_else(|| ConfigTxError::Missing(format!("{ORDERER_GROUP} group")))?
        .values
        .get(BATCH_SIZE_KEY)
        .ok_or_else(|| ConfigTxError::Missing(format!("{ORDERER_GROUP}/{BATCH_SIZE_KEY}")))?;
    BatchSize::decode(value.value.as_slice())
        .map_err(|e| ConfigTxError::Missing(format!("valid {ORDERER_GROUP}/{BATCH_SIZE_KEY}: {e}")))
}

/// As [`batch_size_update`], with errors: the block must be a config block of
/// `channel` with an `Orderer/BatchSize` value.
pub fn try_batch_size_update(
    current_config_block: &Block,
    channel: &str,
    new_max_message_count: u32,
) -> Result<ConfigUpdate, ConfigTxError> {
    let (block_channel, config) = config_from_block(current_config_block)?;
    if block_channel != channel {
        return Err(ConfigTxError::ChannelMismatch {
            found: block_channel,
            expected: channel.to_string(),
        });
    }
    let mut bs = batch_size(&config)?;
    let channel_group = config.channel_group.as_ref().expect("checked");
    let orderer = &channel_group.groups[ORDERER_GROUP];
    let current = &orderer.values[BATCH_SIZE_KEY];
    bs.max_message_count = new_max_message_count;

    // Unchanged groups appear at their current versions, without content or
    // mod_policy (as configtxlator computes it); the value gets version + 1.
    let bare = |g: &ConfigGroup| ConfigGroup {
        version: g.version,
        ..Default::default()
    };
    let mut read_orderer = bare(channel_group);
    read_orderer
        .groups
        .insert(ORDERER_GROUP.to_string(), bare(orderer));
    let mut write_orderer = bare(orderer);
    write_orderer.values.insert(
        BATCH_SIZE_KEY.to_string(),
        ConfigValue {
            version: current.version + 1,
            value: bs.encode_to_vec(),
            mod_policy: current.mod_policy.clone(),
        },
    );
    let mut write_set = bare(channel_group);
    write_set
        .groups
        .insert(ORDERER_GROUP.to_string(), write_orderer);
    Ok(ConfigUpdate {
        channel_id: channel.to_string(),
        read_set: Some(read_orderer),
        write_set: Some(write_set),
        isolated_data: Default::default(),
    })
}

/// The `ConfigUpdate` that sets `Orderer/BatchSize.MaxMessageCount` of
/// `channel` to `new_max_message_count`, from the channel's current config
/// block: the read set holds the Channel and Orderer groups at their current
/// versions (no values), the write set the same groups with the BatchSize
/// value at version + 1, its other fields and mod_policy kept.
///
/// # Panics
///
/// When the block is not a config block of `channel` with an
/// `Orderer/BatchSize` value; see [`try_batch_size_update`].
pub fn batch_size_update(
    current_config_block: &Block,
    channel: &str,
    new_max_message_count: u32,
) -> ConfigUpdate {
    try_batch_size_update(current_config_block, channel, new_max_message_count)
        .unwrap_or_else(|e| panic!("batch_size_update: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::crypto::verify_p256;
    use fabric_common::devcrypto::{DevOrg, NodeOu};
    use fabric_common::msp::pem_cert_public_key;
    use fabric_configtx::genesis::{genesis_block, GenesisFormat};
    use fabric_configtx::DevNetwork;
    use fabric_protos::common::{Header, SignatureHeader};
    use fabric_protos::msp::SerializedIdentity;

    struct Fixture {
        _dir: tempfile::TempDir,
        org: DevOrg,
        admin: LocalSigner,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let org = DevOrg::create(&dir.path().join("org"), "SampleOrg", "example.com").unwrap();
        let msp = org.issue("Admin@example.com", NodeOu::Admin).unwrap();
        let admin = LocalSigner::load(&msp, "SampleOrg").unwrap();
        Fixture {
            _dir: dir,
            org,
            admin,
        }
    }

    fn config_update(channel: &str) -> ConfigUpdate {
        let mut ws = ConfigGroup::default();
        ws.groups
            .insert("Application".into(), ConfigGroup::default());
        ConfigUpdate {
            channel_id: channel.into(),
            read_set: Some(ConfigGroup::default()),
            write_set: Some(ws),
            isolated_data: Default::default(),
        }
    }

    /// An unsigned CONFIG_UPDATE envelope as configtxgen writes it.
    fn envelope(header_type: HeaderType, channel: &str, data: Vec<u8>) -> Envelope {
        create_signed_envelope(
            header_type,
            channel,
            None,
            data,
            &EnvelopeOptions::default(),
        )
    }

    fn cue(channel: &str) -> ConfigUpdateEnvelope {
        ConfigUpdateEnvelope {
            config_update: config_update(channel).encode_to_vec(),
            signatures: vec![],
        }
    }

    fn verify(sig: &ConfigSignature, config_update: &[u8], signer: &LocalSigner) {
        let sh = SignatureHeader::decode(sig.signature_header.as_slice()).unwrap();
        assert_eq!(sh.creator, signer.creator());
        assert_eq!(sh.nonce.len(), 24);
        let id = SerializedIdentity::decode(sh.creator.as_slice()).unwrap();
        assert_eq!(id.mspid, signer.mspid());
        let key = pem_cert_public_key(&id.id_bytes).unwrap();
        let mut msg = sig.signature_header.clone();
        msg.extend_from_slice(config_update);
        verify_p256(&key, &msg, &sig.signature).unwrap();
        // Not over the update alone.
        assert!(verify_p256(&key, config_update, &sig.signature).is_err());
    }

    #[test]
    fn signatures_are_appended_over_header_and_update() {
        let f = fixture();
        let msp2 = f.org.issue("Admin2@example.com", NodeOu::Admin).unwrap();
        let other = LocalSigner::load(&msp2, "SampleOrg").unwrap();
        let mut input = cue("newchan");
        // A signature already present (peer channel signconfigtx) is kept first.
        sign_config_update_envelope(&mut input, &other);
        let env = envelope(HeaderType::ConfigUpdate, "newchan", input.encode_to_vec());
        let tx = parse_config_tx(&env.encode_to_vec()).unwrap();
        assert_eq!(tx.format, ConfigTxFormat::Envelope);
        assert_eq!(tx.channel_id, "newchan");
        tx.check_channel("newchan").unwrap();

        let out = signed_config_update_tx("newchan", tx.envelope, &[&other], &f.admin);
        // The outer envelope: CONFIG_UPDATE for the channel, signed by the submitter.
        let (channel, signed) = open_config_update_tx(&out).unwrap();
        assert_eq!(channel, "newchan");
        let payload = Payload::decode(out.payload.as_slice()).unwrap();
        let sh =
            SignatureHeader::decode(payload.header.as_ref().unwrap().signature_header.as_slice())
                .unwrap();
        assert_eq!(sh.creator, f.admin.creator());
        let key = pem_cert_public_key(f.admin.cert_pem()).unwrap();
        verify_p256(&key, &out.payload, &out.signature).unwrap();

        // The update is unchanged; the signatures are appended in order.
        assert_eq!(signed.config_update, input.config_update);
        assert_eq!(signed.signatures.len(), 3);
        assert_eq!(signed.signatures[0], input.signatures[0]);
        verify(&signed.signatures[0], &signed.config_update, &other);
        verify(&signed.signatures[1], &signed.config_update, &other);
        verify(&signed.signatures[2], &signed.config_update, &f.admin);
        assert_ne!(
            signed.signatures[1].signature_header, signed.signatures[0].signature_header,
            "fresh nonce per signature"
        );
    }

    #[test]
    fn configtxgen_channel_creation_tx_is_accepted() {
        let f = fixture();
        let net = DevNetwork::new(f.org.msp_dir());
        let env = fabric_configtx::genesis::channel_creation_tx(
            "created",
            &net.application_channel_profile(),
            None,
        )
        .unwrap();
        let tx = parse_config_tx(&env.encode_to_vec()).unwrap();
        assert_eq!(
            (tx.channel_id.as_str(), tx.format),
            ("created", ConfigTxFormat::Envelope)
        );
        assert!(tx.envelope.signatures.is_empty());
        assert_eq!(
            tx.check_channel("other"),
            Err(ConfigTxError::ChannelMismatch {
                found: "created".into(),
                expected: "other".into()
            })
        );
    }

    #[test]
    fn bare_forms_are_accepted() {
        let c = cue("ch1");
        let tx = parse_config_tx(&c.encode_to_vec()).unwrap();
        assert_eq!(tx.format, ConfigTxFormat::ConfigUpdateEnvelope);
        assert_eq!(tx.channel_id, "ch1");
        assert_eq!(tx.envelope, c);

        let cu = config_update("ch2").encode_to_vec();
        let tx = parse_config_tx(&cu).unwrap();
        assert_eq!(tx.format, ConfigTxFormat::ConfigUpdate);
        assert_eq!(tx.channel_id, "ch2");
        assert_eq!(tx.envelope.config_update, cu);
        assert!(tx.envelope.signatures.is_empty());
    }

    #[test]
    fn envelope_decoding_errors() {
        let data = cue("ch").encode_to_vec();
        // Wrong header type.
        let e = envelope(HeaderType::EndorserTransaction, "ch", data.clone());
        assert_eq!(
            open_config_update_tx(&e),
            Err(ConfigTxError::WrongType {
                found: "ENDORSER_TRANSACTION".into(),
                expected: "CONFIG_UPDATE"
            })
        );
        assert!(matches!(
            parse_config_tx(&e.encode_to_vec()),
            Err(ConfigTxError::WrongType { .. })
        ));
        // Empty channel ID.
        let e = envelope(HeaderType::ConfigUpdate, "", data.clone());
        assert_eq!(
            open_config_update_tx(&e),
            Err(ConfigTxError::EmptyChannelId)
        );
        // Envelope and update disagree on the channel.
        let e = envelope(HeaderType::ConfigUpdate, "other", data);
        assert_eq!(
            parse_config_tx(&e.encode_to_vec()),
            Err(ConfigTxError::UpdateChannelMismatch {
                update: "ch".into(),
                envelope: "other".into()
            })
        );
        // Data that is not a ConfigUpdateEnvelope.
        let e = envelope(HeaderType::ConfigUpdate, "ch", vec![0xff, 0xff, 0xff]);
        assert!(matches!(
            parse_config_tx(&e.encode_to_vec()),
            Err(ConfigTxError::BadConfigUpdateEnvelope(_))
        ));
        // No header.
        let e = Envelope {
            payload: Payload {
                header: None,
                data: vec![1],
            }
            .encode_to_vec(),
            signature: vec![],
        };
        assert_eq!(open_config_update_tx(&e), Err(ConfigTxError::BadHeader));
        let e = Envelope {
            payload: Payload {
                header: Some(Header::default()),
                data: vec![1],
            }
            .encode_to_vec(),
            signature: vec![],
        };
        assert_eq!(open_config_update_tx(&e), Err(ConfigTxError::BadHeader));
        // A payload that is no Payload.
        let e = Envelope {
            payload: vec![0xff; 4],
            signature: vec![],
        };
        assert!(matches!(
            open_config_update_tx(&e),
            Err(ConfigTxError::BadPayload(_))
        ));
        // Garbage and empty files.
        assert_eq!(parse_config_tx(b""), Err(ConfigTxError::Unrecognized));
        assert_eq!(
            parse_config_tx(b"not a protobuf at all"),
            Err(ConfigTxError::Unrecognized)
        );
    }

    #[test]
    fn fetch_targets() {
        assert_eq!("oldest".parse(), Ok(FetchTarget::Oldest));
        assert_eq!("newest".parse(), Ok(FetchTarget::Newest));
        assert_eq!("config".parse(), Ok(FetchTarget::Config));
        assert_eq!("7".parse(), Ok(FetchTarget::Number(7)));
        assert!("-1".parse::<FetchTarget>().is_err());
        assert_eq!(FetchTarget::Config.default_file("ch"), "ch_config.block");
        assert_eq!(FetchTarget::Number(3).default_file("ch"), "ch_3.block");
        assert!(is_not_ready(Status::NotFound as i32));
        assert!(is_not_ready(Status::ServiceUnavailable as i32));
        assert!(!is_not_ready(Status::Forbidden as i32));
    }

    #[test]
    fn signer_specs() {
        assert!(load_signer_spec("nocolon").is_err());
        assert!(load_signer_spec(":Org1MSP").is_err());
        assert!(load_signer_spec("/x:").is_err());
        let f = fixture();
        let msp = f.org.issue("Admin3@example.com", NodeOu::Admin).unwrap();
        let s = load_signer_spec(&format!("{}:Org1MSP", msp.display())).unwrap();
        assert_eq!(s.mspid(), "Org1MSP");
    }

    fn dev_config_block(f: &Fixture, channel: &str) -> (Block, ConfigGroup) {
        let net = DevNetwork::new(f.org.msp_dir());
        let mut group = fabric_configtx::new_channel_group(&net.system_channel_profile()).unwrap();
        // Give the groups and the value non-zero versions, as after earlier updates.
        group.version = 3;
        let orderer = group.groups.get_mut(ORDERER_GROUP).unwrap();
        orderer.version = 2;
        orderer.values.get_mut(BATCH_SIZE_KEY).unwrap().version = 5;
        (genesis_block(&group, channel, GenesisFormat::V2), group)
    }

    #[test]
    fn batch_size_update_read_and_write_sets() {
        let f = fixture();
        let (block, group) = dev_config_block(&f, "mychannel");
        let (ch, config) = config_from_block(&block).unwrap();
        assert_eq!(ch, "mychannel");
        let before = batch_size(&config).unwrap();
        assert_eq!(before.max_message_count, 500);

        let cu = batch_size_update(&block, "mychannel", 42);
        assert_eq!(cu.channel_id, "mychannel");
        let rs = cu.read_set.as_ref().unwrap();
        assert_eq!(rs.version, 3);
        assert!(rs.values.is_empty() && rs.policies.is_empty());
        assert_eq!(rs.groups.len(), 1);
        let ro = &rs.groups[ORDERER_GROUP];
        assert_eq!(ro.version, 2);
        assert!(ro.values.is_empty() && ro.groups.is_empty() && ro.policies.is_empty());

        let ws = cu.write_set.as_ref().unwrap();
        assert_eq!(ws.version, 3);
        assert_eq!(ws.groups.len(), 1);
        assert!(ws.values.is_empty());
        let wo = &ws.groups[ORDERER_GROUP];
        assert_eq!(wo.version, 2);
        assert_eq!(wo.values.len(), 1);
        let v = &wo.values[BATCH_SIZE_KEY];
        assert_eq!(v.version, 6);
        let orig = &group.groups[ORDERER_GROUP].values[BATCH_SIZE_KEY];
        assert_eq!(v.mod_policy, orig.mod_policy);
        assert!(!v.mod_policy.is_empty());
        let after = BatchSize::decode(v.value.as_slice()).unwrap();
        assert_eq!(
            after,
            BatchSize {
                max_message_count: 42,
                ..before
            }
        );

        // The same update configtxlator would compute from the edited config.
        let mut edited = group.clone();
        edited
            .groups
            .get_mut(ORDERER_GROUP)
            .unwrap()
            .values
            .get_mut(BATCH_SIZE_KEY)
            .unwrap()
            .value = after.encode_to_vec();
        let mut expected = fabric_configtx::update::compute(&group, &edited).unwrap();
        expected.channel_id = "mychannel".into();
        assert_eq!(cu, expected);
    }

    #[test]
    fn batch_size_update_errors() {
        let f = fixture();
        let (block, mut group) = dev_config_block(&f, "mychannel");
        assert_eq!(
            try_batch_size_update(&block, "other", 1),
            Err(ConfigTxError::ChannelMismatch {
                found: "mychannel".into(),
                expected: "other".into()
            })
        );
        group
            .groups
            .get_mut(ORDERER_GROUP)
            .unwrap()
            .values
            .remove(BATCH_SIZE_KEY);
        let block = genesis_block(&group, "mychannel", GenesisFormat::V2);
        assert!(matches!(
            try_batch_size_update(&block, "mychannel", 1),
            Err(ConfigTxError::Missing(_))
        ));
        let not_config = fabric_common::block::new_block(
            1,
            vec![],
            vec![envelope(HeaderType::ConfigUpdate, "mychannel", vec![]).encode_to_vec()],
        );
        assert!(matches!(
            config_from_block(&not_config),
            Err(ConfigTxError::NotAConfigBlock(_))
        ));
        let empty = fabric_common::block::new_block(1, vec![], vec![]);
        assert!(matches!(
            config_from_block(&empty),
            Err(ConfigTxError::NotAConfigBlock(_))
        ));
    }
}
