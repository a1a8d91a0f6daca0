//! Deliver sessions, the chain follower (hash links and signatures) and the
//! `deliver` / `channel-info` commands.

use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use fabric_common::block::{data_hash, header_hash, last_config_index, verify_link};
use fabric_common::envelope::{seek_envelope, seek_newest, seek_oldest, seek_specified};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{Block, BlockHeader, Envelope};
use fabric_protos::orderer::seek_info::{SeekBehavior, SeekErrorResponse};
use fabric_protos::orderer::{deliver_response, DeliverResponse, SeekInfo, SeekPosition};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::Streaming;

use crate::conn::Client;
use crate::verify::{verify_block_signatures, SignerTrust};
use crate::{status_name, SUCCESS};

/// A seek position as given on the command line: `oldest`, `newest` or a
/// block number; as a stop position also `forever` (= `u64::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The oldest block.
    Oldest,
    /// The newest block (at request time).
    Newest,
    /// A block number.
    Specified(u64),
}

impl FromStr for Position {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oldest" => Ok(Position::Oldest),
            "newest" => Ok(Position::Newest),
            "forever" | "max" => Ok(Position::Specified(u64::MAX)),
            n => n
                .parse()
                .map(Position::Specified)
                .map_err(|_| format!("{s:?}: expected oldest, newest, forever or a block number")),
        }
    }
}

impl Position {
    /// The wire form.
    pub fn seek(self) -> SeekPosition {
        match self {
            Position::Oldest => seek_oldest(),
            Position::Newest => seek_newest(),
            Position::Specified(n) => seek_specified(n),
        }
    }
}

/// A `SeekInfo`.
pub fn seek_info(
    start: Position,
    stop: Position,
    fail_if_not_ready: bool,
    best_effort: bool,
) -> SeekInfo {
    SeekInfo {
        start: Some(start.seek()),
        stop: Some(stop.seek()),
        behavior: if fail_if_not_ready {
            SeekBehavior::FailIfNotReady as i32
        } else {
            SeekBehavior::BlockUntilReady as i32
        },
        error_response: if best_effort {
            SeekErrorResponse::BestEffort as i32
        } else {
            SeekErrorResponse::Strict as i32
        },
    }
}

/// What a Deliver stream produced next.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliverItem {
    /// A block.
    Block(Box<Block>),
    /// The final status (the server closes the stream unless it is SUCCESS).
    Status(i32),
    /// The stream ended without a status.
    End,
}

/// One Deliver stream. The request side stays open until the session is
/// dropped, so the server never sees a half-close mid-delivery.
pub struct DeliverSession {
    tx: mpsc::Sender<Envelope>,
    rx: Streaming<DeliverResponse>,
}

impl std::fmt::Debug for DeliverSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverSession").finish_non_exhaustive()
    }
}

impl DeliverSession {
    /// Opens a Deliver stream and sends `seek` (a signed DELIVER_SEEK_INFO envelope).
    pub async fn open(client: &mut Client, seek: Envelope) -> Result<Self> {
        let (tx, rx) = mpsc::channel(4);
        tx.send(seek)
            .await
            .map_err(|_| anyhow!("deliver request channel closed"))?;
        let resp = client
            .deliver(ReceiverStream::new(rx))
            .await
            .context("Deliver RPC failed")?;
        Ok(Self {
            tx,
            rx: resp.into_inner(),
        })
    }

    /// Opens a session for `info` on `channel`, signed by `signer`.
    pub async fn seek(
        client: &mut Client,
        channel: &str,
        signer: &LocalSigner,
        info: &SeekInfo,
    ) -> Result<Self> {
        Self::open(
            client,
            seek_envelope(channel, Some(signer), info, Vec::new()),
        )
        .await
    }

    /// Sends another seek on the same stream (allowed after a SUCCESS status).
    pub async fn send(&self, seek: Envelope) -> Result<()> {
        self.tx
            .send(seek)
            .await
            .map_err(|_| anyhow!("deliver stream closed"))
    }

    /// The next block or status.
    pub async fn next(&mut self) -> Result<DeliverItem> {
        match self.rx.message().await.context("Deliver stream failed")? {
            None => Ok(DeliverItem::End),
            Some(DeliverResponse {
                r#type: Some(deliver_response::Type::Block(b)),
            }) => Ok(DeliverItem::Block(Box::new(b))),
            Some(DeliverResponse {
                r#type: Some(deliver_response::Type::Status(s)),
            }) => Ok(DeliverItem::Status(s)),
            Some(DeliverResponse { r#type: None }) => bail!("empty DeliverResponse"),
        }
    }
}

/// Fetches a single block (`start = stop = pos`), like `peer channel fetch`:
/// one block, then a SUCCESS status.
pub async fn fetch_block(
    client: &mut Client,
    channel: &str,
    signer: &LocalSigner,
    pos: Position,
) -> Result<Block> {
    let info = seek_info(pos, pos, false, false);
    let mut s = DeliverSession::seek(client, channel, signer, &info).await?;
    let block = match s.next().await? {
        DeliverItem::Block(b) => *b,
        DeliverItem::Status(st) => bail!(
            "fetching block {pos:?} of {channel:?}: status {}",
            status_name(st)
        ),
        DeliverItem::End => bail!("fetching block {pos:?} of {channel:?}: stream ended"),
    };
    match s.next().await? {
        DeliverItem::Status(SUCCESS) => Ok(block),
        other => bail!(
            "fetching block {pos:?}: expected a SUCCESS status after the block, got {other:?}"
        ),
    }
}

/// The newest block of a channel.
pub async fn newest_block(
    client: &mut Client,
    channel: &str,
    signer: &LocalSigner,
) -> Result<Block> {
    fetch_block(client, channel, signer, Position::Newest).await
}

/// The channel height (newest block number + 1).
pub async fn channel_height(
    client: &mut Client,
    channel: &str,
    signer: &LocalSigner,
) -> Result<u64> {
    let b = newest_block(client, channel, signer).await?;
    Ok(b.header.map(|h| h.number + 1).unwrap_or(0))
}

/// A block as the `deliver` command prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockSummary {
    /// Block number.
    pub number: u64,
    /// Header hash (hex), i.e. the next block's previous hash.
    pub hash: String,
    /// Data hash (hex).
    pub data_hash: String,
    /// Previous hash (hex).
    pub previous_hash: String,
    /// Number of envelopes.
    pub tx_count: usize,
    /// LAST_CONFIG index, if recorded.
    pub last_config: Option<u64>,
}

impl BlockSummary {
    /// Summarises a block.
    pub fn of(block: &Block) -> Self {
        let h = block.header.clone().unwrap_or_default();
        BlockSummary {
            number: h.number,
            hash: hex::encode(header_hash(&h)),
            data_hash: hex::encode(&h.data_hash),
            previous_hash: hex::encode(&h.previous_hash),
            tx_count: block.data.as_ref().map_or(0, |d| d.data.len()),
            last_config: last_config_index(block),
        }
    }
}

/// Checks a run of consecutive blocks: numbers, previous-hash links, data
/// hashes and (optionally) the orderer's signatures.
#[derive(Debug, Clone, Default)]
pub struct ChainFollower {
    prev: Option<BlockHeader>,
    /// `None`: signatures are not checked.
    pub trust: Option<SignerTrust>,
    /// Blocks checked so far.
    pub blocks: u64,
    /// MSP IDs whose signatures verified.
    pub signers: std::collections::BTreeSet<String>,
}

impl ChainFollower {
    /// A follower that starts after `prev` (or at whatever block comes first
    /// when `None`), checking signatures against `trust` when given.
    pub fn new(prev: Option<BlockHeader>, trust: Option<SignerTrust>) -> Self {
        Self {
            prev,
            trust,
            ..Default::default()
        }
    }

    /// The last accepted header.
    pub fn last(&self) -> Option<&BlockHeader> {
        self.prev.as_ref()
    }

    /// Checks `block` and makes it the new chain head, whether or not it
    /// passes (so one bad link is reported once, and later links are still
    /// checked). Block 0 (genesis, unsigned in Fabric) is exempt from
    /// signature checks.
    pub fn check(&mut self, block: &Block) -> Result<(), String> {
        let header = block.header.as_ref().ok_or("block without header")?;
        let result = self.check_inner(header, block);
        self.prev = Some(header.clone());
        self.blocks += 1;
        result
    }

    fn check_inner(&mut self, header: &BlockHeader, block: &Block) -> Result<(), String> {
        match &self.prev {
            Some(p) => verify_link(Some(p), block).map_err(|e| e.to_string())?,
            None if header.number == 0 => verify_link(None, block).map_err(|e| e.to_string())?,
            None => {
                let data = block
                    .data
                    .as_ref()
                    .map(|d| d.data.as_slice())
                    .unwrap_or(&[]);
                if header.data_hash != data_hash(data) {
                    return Err(format!(
                        "block {}: data_hash does not match its data",
                        header.number
                    ));
                }
            }
        }
        if let Some(trust) = &self.trust {
            if header.number > 0 {
                let signers = verify_block_signatures(block, trust)
                    .map_err(|e| format!("block {}: {e}", header.number))?;
                for s in signers {
                    self.signers.insert(s.mspid);
                }
            }
        }
        Ok(())
    }
}

/// Options of the `deliver` command.
#[derive(Debug, Clone)]
pub struct DeliverOpts {
    /// Channel.
    pub channel: String,
    /// Start position.
    pub start: Position,
    /// Stop position.
    pub stop: Position,
    /// FAIL_IF_NOT_READY instead of BLOCK_UNTIL_READY.
    pub fail_if_not_ready: bool,
    /// BEST_EFFORT error response.
    pub best_effort: bool,
    /// Check block signatures against this trust (`None`: links only).
    pub trust: Option<SignerTrust>,
}

/// What a `deliver` run saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliverReport {
    /// Blocks received.
    pub blocks: u64,
    /// Envelopes in them.
    pub txs: u64,
    /// The final status (None if the stream ended without one).
    pub status: Option<i32>,
    /// Chain or signature violations.
    pub violations: Vec<String>,
}

impl DeliverReport {
    /// Final status SUCCESS and no violations.
    pub fn ok(&self) -> bool {
        self.status == Some(SUCCESS) && self.violations.is_empty()
    }
}

/// Runs one Deliver request to its end, calling `on_block` for each block.
pub async fn run(
    client: &mut Client,
    signer: &LocalSigner,
    opts: &DeliverOpts,
    mut on_block: impl FnMut(&Block, &BlockSummary, Option<&str>),
) -> Result<DeliverReport> {
    let info = seek_info(
        opts.start,
        opts.stop,
        opts.fail_if_not_ready,
        opts.best_effort,
    );
    let mut session = DeliverSession::seek(client, &opts.channel, signer, &info).await?;
    let mut follower = ChainFollower::new(None, opts.trust.clone());
    let mut report = DeliverReport::default();
    loop {
        match session.next().await? {
            DeliverItem::Block(b) => {
                let summary = BlockSummary::of(&b);
                report.blocks += 1;
                report.txs += summary.tx_count as u64;
                let violation = follower.check(&b).err();
                if let Some(v) = &violation {
                    report.violations.push(v.clone());
                }
                on_block(&b, &summary, violation.as_deref());
            }
            DeliverItem::Status(s) => {
                report.status = Some(s);
                break;
            }
            DeliverItem::End => break,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::block::new_block;

    #[test]
    fn positions_parse() {
        assert_eq!("oldest".parse(), Ok(Position::Oldest));
        assert_eq!("newest".parse(), Ok(Position::Newest));
        assert_eq!("forever".parse(), Ok(Position::Specified(u64::MAX)));
        assert_eq!("17".parse(), Ok(Position::Specified(17)));
        assert!("x".parse::<Position>().is_err());
        let si = seek_info(Position::Oldest, Position::Specified(u64::MAX), true, true);
        assert_eq!(si.behavior, SeekBehavior::FailIfNotReady as i32);
        assert_eq!(si.error_response, SeekErrorResponse::BestEffort as i32);
    }

    fn chain(n: u64) -> Vec<Block> {
        let mut out: Vec<Block> = Vec::new();
        for i in 0..n {
            let prev = out
                .last()
                .map(|b| header_hash(b.header.as_ref().unwrap()))
                .unwrap_or_default();
            out.push(new_block(i, prev, vec![format!("tx{i}").into_bytes()]));
        }
        out
    }

    #[test]
    fn follower_accepts_a_chain_from_any_start_and_rejects_breaks() {
        let c = chain(5);
        let mut f = ChainFollower::new(None, None);
        for b in &c {
            f.check(b).unwrap();
        }
        assert_eq!(f.blocks, 5);
        let mut f = ChainFollower::new(None, None);
        f.check(&c[2]).unwrap();
        f.check(&c[3]).unwrap();
        assert!(f.check(&c[3]).unwrap_err().contains("expected"));
        let mut f = ChainFollower::new(c[1].header.clone(), None);
        assert!(f.check(&c[3]).is_err()); // gap
        f.check(&c[4]).unwrap(); // re-anchored on block 3
        let mut f = ChainFollower::new(c[1].header.clone(), None);
        let mut bad = c[2].clone();
        bad.header.as_mut().unwrap().previous_hash[0] ^= 1;
        assert!(f.check(&bad).unwrap_err().contains("previous_hash"));
        // The tampered header hashes differently, so the next link breaks too.
        assert!(f.check(&c[3]).unwrap_err().contains("previous_hash"));
        f.check(&c[4]).unwrap();
        // Signatures required when a trust is given (except for block 0).
        let mut f = ChainFollower::new(None, Some(SignerTrust::any()));
        f.check(&c[0]).unwrap();
        assert!(f.check(&c[1]).unwrap_err().contains("no orderer signature"));
        let s = BlockSummary::of(&c[1]);
        assert_eq!(s.number, 1);
        assert_eq!(s.tx_count, 1);
        assert_eq!(
            s.previous_hash,
            hex::encode(header_hash(c[0].header.as_ref().unwrap()))
        );
    }
}
