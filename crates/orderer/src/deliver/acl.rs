//! Deliver access control for one seek request (Fabric's
//! `common/deliver/acl.go` `SessionAccessControl`): the creator's
//! certificate must not have expired, and the seek envelope must satisfy
//! the channel's readers policy, evaluated on first use and again whenever
//! the channel's config sequence has changed since the last evaluation.

use std::time::SystemTime;

use fabric_msp::SignedData;
use fabric_protos::common::Envelope;

use super::DeliverError;
use crate::channels::ChannelBundle;

/// The access decision of one Deliver request, kept for its blocks.
#[derive(Debug)]
pub struct SessionAccessControl {
    signed: Vec<SignedData>,
    /// The creator's NotAfter; `None` when it cannot expire or expiry
    /// checks are off.
    session_end: Option<SystemTime>,
    /// The config sequence of the last policy evaluation.
    last_sequence: Option<u64>,
}

impl SessionAccessControl {
    /// Fabric's `NewSessionAC`: the envelope's signature set
    /// (`AsSignedData`; an error is BAD_REQUEST) and its expiry.
    pub fn new(
        bundle: &ChannelBundle,
        env: &Envelope,
        expiration_checks: bool,
    ) -> Result<Self, DeliverError> {
        let signed = fabric_msp::signed_data_from_envelope(env)
            .map_err(|e| DeliverError::SignedData(e.to_string()))?;
        let session_end = if expiration_checks {
            bundle.policies.creator_expires_at(&signed[0].identity)
        } else {
            None
        };
        Ok(Self {
            signed,
            session_end,
            last_sequence: None,
        })
    }

    /// Fabric's `Evaluate` against the channel's current config: expiry
    /// first, then the readers policy when it was never evaluated or the
    /// config sequence increased since.
    pub fn evaluate(&mut self, bundle: &ChannelBundle) -> Result<(), DeliverError> {
        if let Some(end) = self.session_end {
            let now = SystemTime::now();
            if now > end {
                let ago = now.duration_since(end).unwrap_or_default();
                return Err(DeliverError::Forbidden(format!(
                    "deliver client identity expired {ago:?} before"
                )));
            }
        }
        let seq = bundle.sequence();
        if self.last_sequence.is_some_and(|last| last >= seq) {
            return Ok(());
        }
        bundle
            .policies
            .check_readers(&self.signed)
            .map_err(|e| DeliverError::Forbidden(e.to_string()))?;
        self.last_sequence = Some(seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channelconfig::ChannelConfig;
    use fabric_common::devcrypto::{DevOrg, NodeOu};
    use fabric_common::envelope::{seek_envelope, seek_newest};
    use fabric_common::msp::LocalSigner;
    use fabric_protos::orderer::SeekInfo;

    fn bundle(org: &DevOrg, sequence: u64) -> ChannelBundle {
        let mut dev = fabric_configtx::dev::DevNetwork::new(org.msp_dir());
        dev.org_name = org.mspid.clone();
        dev.msp_id = org.mspid.clone();
        let block = fabric_configtx::genesis::genesis_block_from_profile(
            &dev.system_channel_profile(),
            "ch",
        )
        .unwrap();
        let mut config = ChannelConfig::from_block(&block).unwrap();
        config.sequence = sequence;
        config.config.sequence = sequence;
        ChannelBundle::new(config).unwrap()
    }

    #[test]
    fn readers_policy_is_reevaluated_only_when_the_sequence_changes() {
        let dir = tempfile::tempdir().unwrap();
        let a = DevOrg::create(&dir.path().join("a"), "OrgA", "a.example.com").unwrap();
        let b = DevOrg::create(&dir.path().join("b"), "OrgB", "b.example.com").unwrap();
        let user = LocalSigner::load(&a.issue("User1", NodeOu::Client).unwrap(), "OrgA").unwrap();
        let seek = SeekInfo {
            start: Some(seek_newest()),
            stop: Some(seek_newest()),
            ..Default::default()
        };
        let env = seek_envelope("ch", Some(&user), &seek, vec![]);

        let with_a = bundle(&a, 0);
        let mut acl = SessionAccessControl::new(&with_a, &env, true).unwrap();
        acl.evaluate(&with_a).unwrap();
        // Same sequence: the cached decision stands (Fabric evaluates
        // again only when the sequence increased).
        let without_a_same_seq = bundle(&b, 0);
        acl.evaluate(&without_a_same_seq).unwrap();
        // A config change that removes OrgA ends the session.
        let without_a = bundle(&b, 1);
        let err = acl.evaluate(&without_a).unwrap_err();
        assert!(matches!(err, DeliverError::Forbidden(_)), "{err}");
        assert!(err.to_string().contains("permission denied"), "{err}");

        // A new session by the same user under the new config is refused at once.
        let mut acl = SessionAccessControl::new(&without_a, &env, true).unwrap();
        assert!(matches!(
            acl.evaluate(&without_a),
            Err(DeliverError::Forbidden(_))
        ));
        // And a badly signed envelope never passes.
        let mut bad = env.clone();
        bad.signature = user.sign(b"other");
        let mut acl = SessionAccessControl::new(&with_a, &bad, true).unwrap();
        assert!(matches!(
            acl.evaluate(&with_a),
            Err(DeliverError::Forbidden(_))
        ));
    }

    #[test]
    fn expired_creator_is_refused_before_the_policy_unless_checks_are_off() {
        let dir = tempfile::tempdir().unwrap();
        let a = DevOrg::create(&dir.path().join("a"), "OrgA", "a.example.com").unwrap();
        let old = LocalSigner::load(
            &a.issue_with_validity("Old", NodeOu::Client, -1).unwrap(),
            "OrgA",
        )
        .unwrap();
        let env = seek_envelope("ch", Some(&old), &SeekInfo::default(), vec![]);
        let with_a = bundle(&a, 0);
        let mut acl = SessionAccessControl::new(&with_a, &env, true).unwrap();
        let err = acl.evaluate(&with_a).unwrap_err();
        assert!(
            err.to_string().contains("deliver client identity expired"),
            "{err}"
        );
        // Without expiry checks the policy decides (this certificate also
        // predates its CA, which the MSP's chain check refuses).
        let mut acl = SessionAccessControl::new(&with_a, &env, false).unwrap();
        let err = acl.evaluate(&with_a).unwrap_err();
        assert!(err.to_string().contains("permission denied"), "{err}");
    }
}
