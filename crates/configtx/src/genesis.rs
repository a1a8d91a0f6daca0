//! Genesis blocks (Fabric's `genesis.Factory`) and channel creation
//! transactions (`encoder.MakeChannelCreationTransaction`, unsigned).

use fabric_common::block::{new_block, LAST_CONFIG, SIGNATURES};
use fabric_common::envelope::{channel_header, compute_txid, new_nonce};
use fabric_protos::common::{
    Block, Config, ConfigEnvelope, ConfigGroup, ConfigUpdate, ConfigUpdateEnvelope, ConfigValue,
    Consortium, Envelope, Header, HeaderType, LastConfig, Metadata, OrdererBlockMetadata, Payload,
    SignatureHeader,
};
use prost::Message;

use crate::config::Profile;
use crate::encoder::{self, keys};
use crate::error::{Error, Result};
use crate::gowire;
use crate::update;

/// Which Fabric release's genesis block layout to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GenesisFormat {
    /// Fabric v1.4: only `metadata[LAST_CONFIG]` is set.
    V1_4,
    /// Fabric v2.x (default): additionally `metadata[SIGNATURES]` carries
    /// `OrdererBlockMetadata{last_config: {index: 0}}` (no signatures).
    #[default]
    V2,
}

/// The CONFIG envelope of a genesis block: channel header version 1, epoch
/// 0, `tx_id = hex(sha256(nonce))` (no creator), empty signature.
pub fn genesis_config_envelope(channel_group: &ConfigGroup, channel_id: &str) -> Envelope {
    let nonce = new_nonce();
    let mut ch = channel_header(HeaderType::Config, 1, channel_id, 0);
    ch.tx_id = compute_txid(&nonce, &[]);
    let sh = SignatureHeader {
        creator: Vec::new(),
        nonce,
    };
    let data = gowire::config_envelope(&ConfigEnvelope {
        config: Some(Config {
            sequence: 0,
            channel_group: Some(channel_group.clone()),
        }),
        last_update: None,
    });
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: sh.encode_to_vec(),
        }),
        data,
    };
    Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    }
}

/// A genesis block (number 0, no previous hash) holding `channel_group`.
pub fn genesis_block(
    channel_group: &ConfigGroup,
    channel_id: &str,
    format: GenesisFormat,
) -> Block {
    let env = genesis_config_envelope(channel_group, channel_id);
    let mut block = new_block(0, Vec::new(), vec![env.encode_to_vec()]);
    let md = &mut block.metadata.get_or_insert_with(Default::default).metadata;
    md[LAST_CONFIG] = Metadata {
        value: LastConfig { index: 0 }.encode_to_vec(),
        signatures: vec![],
    }
    .encode_to_vec();
    if format == GenesisFormat::V2 {
        md[SIGNATURES] = Metadata {
            value: OrdererBlockMetadata {
                last_config: Some(LastConfig { index: 0 }),
                consenter_metadata: vec![],
            }
            .encode_to_vec(),
            signatures: vec![],
        }
        .encode_to_vec();
    }
    block
}

/// What `configtxgen -outputBlock` does: checks the profile (an Orderer
/// section; Consortiums for a system channel or Application otherwise; no
/// foreign orgs), encodes it and wraps it in a genesis block.
pub fn genesis_block_from_profile_with(
    profile: &Profile,
    channel_id: &str,
    format: GenesisFormat,
) -> Result<Block> {
    encoder::has_skipped_foreign_orgs(profile)
        .map_err(|e| e.context("all org definitions must be local during bootstrapping"))?;
    let group = encoder::new_channel_group(profile)
        .map_err(|e| e.context("could not create channel group"))?;
    if profile.orderer.is_none() {
        return Err(Error::Encode(
            "refusing to generate block which is missing orderer section".into(),
        ));
    }
    if profile.consortiums.is_none() && profile.application.is_none() {
        return Err(Error::Encode(
            "refusing to generate application channel block which is missing application section"
                .into(),
        ));
    }
    Ok(genesis_block(&group, channel_id, format))
}

/// [`genesis_block_from_profile_with`] in the Fabric v2 layout.
pub fn genesis_block_from_profile(profile: &Profile, channel_id: &str) -> Result<Block> {
    genesis_block_from_profile_with(profile, channel_id, GenesisFormat::V2)
}

/// The template used when no system channel context is given
/// (`DefaultConfigTemplate`): the profile's channel group with the
/// Application group's values and policies removed.
pub fn default_config_template(profile: &Profile) -> Result<ConfigGroup> {
    let mut g = encoder::new_channel_group(profile)
        .map_err(|e| e.context("error parsing configuration"))?;
    let app = g.groups.get_mut(keys::APPLICATION_GROUP).ok_or_else(|| {
        Error::Encode("channel template configs must contain an application section".into())
    })?;
    app.values.clear();
    app.policies.clear();
    Ok(g)
}

/// The template derived from a system channel group (`ConfigTemplateFromGroup`).
pub fn config_template_from_group(
    profile: &Profile,
    system_group: &ConfigGroup,
) -> Result<ConfigGroup> {
    let mut template = system_group.clone();
    if template.groups.is_empty() {
        return Err(Error::Encode(
            "supplied system channel group has no sub-groups".into(),
        ));
    }
    let consortiums = template.groups.remove(keys::CONSORTIUMS_GROUP).ok_or_else(|| {
        Error::Encode("supplied system channel group does not appear to be system channel (missing consortiums group)".into())
    })?;
    if consortiums.groups.is_empty() {
        return Err(Error::Encode(
            "system channel consortiums group appears to have no consortiums defined".into(),
        ));
    }
    let consortium = consortiums.groups.get(&profile.consortium).ok_or_else(|| {
        Error::Encode(format!(
            "supplied system channel group is missing '{}' consortium",
            profile.consortium
        ))
    })?;
    let app_conf = profile.application.as_ref().ok_or_else(|| {
        Error::Encode(
            "supplied channel creation profile does not contain an application section".into(),
        )
    })?;
    let mut app = ConfigGroup::default();
    app.policies.insert(keys::ADMINS.into(), Default::default());
    for org in &app_conf.organizations {
        let og = consortium.groups.get(&org.name).ok_or_else(|| {
            Error::Encode(format!(
                "consortium {} does not contain member org {}",
                profile.consortium, org.name
            ))
        })?;
        app.groups.insert(org.name.clone(), og.clone());
    }
    template.groups.insert(keys::APPLICATION_GROUP.into(), app);
    template.values.insert(
        keys::CONSORTIUM.into(),
        ConfigValue {
            version: 0,
            value: Consortium {
                name: profile.consortium.clone(),
            }
            .encode_to_vec(),
            mod_policy: keys::ADMINS.into(),
        },
    );
    Ok(template)
}

/// The `ConfigUpdate` creating `channel_id` from `profile`
/// (`NewChannelCreateConfigUpdate`).
pub fn channel_create_config_update(
    channel_id: &str,
    profile: &Profile,
    template: &ConfigGroup,
) -> Result<ConfigUpdate> {
    if profile.application.is_none() {
        return Err(Error::Encode(
            "cannot define a new channel with no Application section".into(),
        ));
    }
    if profile.consortium.is_empty() {
        return Err(Error::Encode(
            "cannot define a new channel with no Consortium value".into(),
        ));
    }
    let new_group = encoder::new_channel_group(profile)
        .map_err(|e| e.context("could not turn parse profile into channel group"))?;
    let mut updt =
        update::compute(template, &new_group).map_err(|e| e.context("could not compute update"))?;
    updt.channel_id = channel_id.to_string();
    updt.read_set
        .get_or_insert_with(Default::default)
        .values
        .insert(
            keys::CONSORTIUM.into(),
            ConfigValue {
                version: 0,
                ..Default::default()
            },
        );
    updt.write_set
        .get_or_insert_with(Default::default)
        .values
        .insert(
            keys::CONSORTIUM.into(),
            ConfigValue {
                version: 0,
                value: Consortium {
                    name: profile.consortium.clone(),
                }
                .encode_to_vec(),
                mod_policy: String::new(),
            },
        );
    Ok(updt)
}

/// The unsigned `ConfigUpdateEnvelope` creating `channel_id`. With
/// `base_profile` (the system channel profile) the template comes from its
/// channel group (`-channelCreateTxBaseProfile`); otherwise from the
/// profile itself. A client adds `ConfigSignature`s before submitting.
pub fn channel_creation_config_update_envelope(
    channel_id: &str,
    profile: &Profile,
    base_profile: Option<&Profile>,
) -> Result<ConfigUpdateEnvelope> {
    let template = match base_profile {
        None => default_config_template(profile)
            .map_err(|e| e.context("could not generate default config template"))?,
        Some(base) => {
            let cg = encoder::new_channel_group(base)
                .map_err(|e| e.context("could not parse system channel config"))?;
            config_template_from_group(profile, &cg)
                .map_err(|e| e.context("could not create config template"))?
        }
    };
    let updt = channel_create_config_update(channel_id, profile, &template)
        .map_err(|e| e.context("config update generation failure"))?;
    Ok(ConfigUpdateEnvelope {
        config_update: gowire::config_update(&updt),
        signatures: vec![],
    })
}

/// Wraps a `ConfigUpdateEnvelope` in an unsigned CONFIG_UPDATE envelope as
/// `protoutil.CreateSignedEnvelope` does with a nil signer: channel header
/// (version 0, epoch 0, no tx_id), empty signature header and signature.
pub fn config_update_tx(channel_id: &str, cue: &ConfigUpdateEnvelope) -> Envelope {
    let ch = channel_header(HeaderType::ConfigUpdate, 0, channel_id, 0);
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: Vec::new(),
        }),
        data: cue.encode_to_vec(),
    };
    Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    }
}

/// What `configtxgen -outputCreateChannelTx` writes (unsigned).
pub fn channel_creation_tx(
    channel_id: &str,
    profile: &Profile,
    base_profile: Option<&Profile>,
) -> Result<Envelope> {
    let cue = channel_creation_config_update_envelope(channel_id, profile, base_profile)?;
    Ok(config_update_tx(channel_id, &cue))
}
