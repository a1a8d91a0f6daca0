//! A programmatic single-organization development network (what the
//! orderer's embedded default uses): one org acting as orderer org,
//! consortium member and application org, dev-mode policies (members may
//! administer), Fabric's sample batch parameters.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{
    Application, BatchSize, Consortium, Orderer, Organization, Policies, Policy, Profile,
    ADMIN_ROLE_ADMIN_PRINCIPAL, MSP_TYPE_BCCSP,
};
use crate::units::GoDuration;

/// Parameters of the development network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevNetwork {
    /// Organization (group) name, default `SampleOrg`.
    pub org_name: String,
    /// MSP ID, default `SampleOrg`.
    pub msp_id: String,
    /// The organization's MSP folder (absolute).
    pub msp_dir: PathBuf,
    /// `solo` (default) or `kafka`.
    pub orderer_type: String,
    /// Orderer addresses, default `127.0.0.1:7050`.
    pub orderer_addresses: Vec<String>,
    /// Kafka brokers (used when `orderer_type` is `kafka`), default `127.0.0.1:9092`.
    pub kafka_brokers: Vec<String>,
    /// Consortium name, default `SampleConsortium`.
    pub consortium: String,
    /// Batch timeout, default 2s.
    pub batch_timeout: GoDuration,
    /// Batch size, default 500 / 10 MiB / 2 MiB.
    pub batch_size: BatchSize,
    /// Maximum number of channels, default 0 (unlimited).
    pub max_channels: u64,
    /// Channel capabilities, default `V1_4_3` (understood by Fabric v1.4.3+ and v2.x).
    pub channel_capabilities: Vec<String>,
    /// Orderer capabilities, default `V1_4_2`.
    pub orderer_capabilities: Vec<String>,
    /// Application capabilities, default `V1_4_2`.
    pub application_capabilities: Vec<String>,
}

impl DevNetwork {
    /// Defaults around the given MSP folder.
    pub fn new(msp_dir: impl Into<PathBuf>) -> Self {
        DevNetwork {
            org_name: "SampleOrg".into(),
            msp_id: "SampleOrg".into(),
            msp_dir: msp_dir.into(),
            orderer_type: "solo".into(),
            orderer_addresses: vec!["127.0.0.1:7050".into()],
            kafka_brokers: vec!["127.0.0.1:9092".into()],
            consortium: "SampleConsortium".into(),
            batch_timeout: GoDuration::from_secs(2),
            batch_size: BatchSize {
                max_message_count: 500,
                absolute_max_bytes: 10 * 1024 * 1024,
                preferred_max_bytes: 2 * 1024 * 1024,
            },
            max_channels: 0,
            channel_capabilities: vec!["V1_4_3".into()],
            orderer_capabilities: vec!["V1_4_2".into()],
            application_capabilities: vec!["V1_4_2".into()],
        }
    }

    fn caps(list: &[String]) -> BTreeMap<String, bool> {
        list.iter().map(|c| (c.clone(), true)).collect()
    }

    fn group_policies(orderer: bool) -> Policies {
        let mut p = Policies::new();
        p.insert("Readers".into(), Policy::implicit_meta("ANY Readers"));
        p.insert("Writers".into(), Policy::implicit_meta("ANY Writers"));
        p.insert("Admins".into(), Policy::implicit_meta("MAJORITY Admins"));
        if orderer {
            p.insert(
                "BlockValidation".into(),
                Policy::implicit_meta("ANY Writers"),
            );
        }
        p
    }

    /// The organization definition (dev mode: every policy is `OR('<msp>.member')`).
    pub fn organization(&self) -> Organization {
        let rule = format!("OR('{}.member')", self.msp_id);
        let mut policies = Policies::new();
        for name in ["Readers", "Writers", "Admins"] {
            policies.insert(name.into(), Policy::signature(&rule));
        }
        Organization {
            name: self.org_name.clone(),
            id: self.msp_id.clone(),
            msp_dir: self.msp_dir.clone(),
            msp_type: MSP_TYPE_BCCSP.into(),
            policies,
            admin_principal: ADMIN_ROLE_ADMIN_PRINCIPAL.into(),
            ..Default::default()
        }
    }

    fn orderer(&self) -> Orderer {
        Orderer {
            orderer_type: self.orderer_type.clone(),
            addresses: Some(self.orderer_addresses.clone()),
            batch_timeout: self.batch_timeout,
            batch_size: self.batch_size,
            kafka_brokers: Some(self.kafka_brokers.clone()),
            etcd_raft: None,
            organizations: vec![self.organization()],
            max_channels: self.max_channels,
            capabilities: Self::caps(&self.orderer_capabilities),
            policies: Self::group_policies(true),
        }
    }

    fn application(&self) -> Application {
        Application {
            organizations: vec![self.organization()],
            capabilities: Self::caps(&self.application_capabilities),
            policies: Self::group_policies(false),
            acls: BTreeMap::new(),
        }
    }

    /// The system channel profile (Orderer + Consortiums), like
    /// `SampleDevModeSolo` / `SampleDevModeKafka`.
    pub fn system_channel_profile(&self) -> Profile {
        let mut consortiums = BTreeMap::new();
        consortiums.insert(
            self.consortium.clone(),
            Consortium {
                organizations: vec![self.organization()],
            },
        );
        Profile {
            consortium: String::new(),
            application: None,
            orderer: Some(self.orderer()),
            consortiums: Some(consortiums),
            capabilities: Self::caps(&self.channel_capabilities),
            policies: Self::group_policies(false),
        }
    }

    /// An application channel profile (Consortium + Application), like
    /// `SampleSingleMSPChannel`, for channel creation transactions.
    pub fn application_channel_profile(&self) -> Profile {
        Profile {
            consortium: self.consortium.clone(),
            application: Some(self.application()),
            orderer: None,
            consortiums: None,
            capabilities: Self::caps(&self.channel_capabilities),
            policies: Self::group_policies(false),
        }
    }
}
