//! A Kafka-based ordering service for Hyperledger Fabric (solo backend
//! first). Modules in the order of the data path:
//!
//! | hop | what | module |
//! |---|---|---|
//! | ① | client → Broadcast (one response per envelope, in order) | [`service`], [`broadcast`] |
//! | ② | the channel's message processor (classify, maintenance, filters, config updates) over the policy checks | [`msgprocessor`], [`policy`] |
//! | ③④ | ordering backend: solo (Kafka produce/consume next) | [`consensus`] |
//! | ⑤ | block cutter (pure) | [`blockcutter`] |
//! | ⑥ | block assembly + signature, then the ledger | [`blockwriter`], `fabric-ledger` crate |
//! | ⑦⑧ | ledger → Deliver → client | [`deliver`], [`service`] |
//!
//! Around it: [`channels`] (registrar), [`channelconfig`] (what the config
//! block says), [`status`] (errors → Fabric status, in one place),
//! [`server`] (start-up, bootstrap, TLS, shutdown), [`devnet`] (the
//! embedded default), [`limits`], [`operations`] (`/healthz`, `/metrics`,
//! `/logspec`, `/version`), [`metrics`] (Fabric's metric names).

pub mod blockcutter;
pub mod blockwriter;
pub mod broadcast;
pub mod consensus;
pub mod dedupe;
pub mod deliver;
pub mod msgprocessor;
pub mod policy;
pub mod service;

pub mod channelconfig;
pub mod channels;
pub mod configupdate;
pub mod devnet;
pub mod ledgercheck;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod operations;
pub mod server;
pub mod status;
