//! Protobuf encoding of the map-carrying config messages the way Go's
//! protobuf runtime writes them.
//!
//! prost leaves a map entry's key or value out when it equals its default
//! (`Capability{}` values, `ConfigValue{version: 0}` read-set entries); Go
//! always writes both fields of every entry. The decoded messages are the
//! same, but the bytes (and so the block data hash, and byte comparisons of
//! config values done by Fabric tooling) differ. These encoders write every
//! map entry with its key and value, in sorted key order; every other field
//! is encoded by prost, which matches Go for map-free messages.

use std::collections::BTreeMap;

use fabric_protos::common::{Capabilities, Config, ConfigEnvelope, ConfigGroup, ConfigUpdate};
use fabric_protos::peer::AcLs;
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;

fn put_len_delimited(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

fn put_uint(tag: u32, v: u64, buf: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(v, buf);
    }
}

fn put_string(tag: u32, s: &str, buf: &mut Vec<u8>) {
    if !s.is_empty() {
        put_len_delimited(tag, s.as_bytes(), buf);
    }
}

/// One map entry `{1: key, 2: value}` with both fields always present.
fn put_entry(tag: u32, key: &str, value: &[u8], buf: &mut Vec<u8>) {
    let mut entry = Vec::with_capacity(key.len() + value.len() + 8);
    put_len_delimited(1, key.as_bytes(), &mut entry);
    put_len_delimited(2, value, &mut entry);
    put_len_delimited(tag, &entry, buf);
}

fn put_map<V>(tag: u32, map: &BTreeMap<String, V>, enc: impl Fn(&V) -> Vec<u8>, buf: &mut Vec<u8>) {
    for (k, v) in map {
        put_entry(tag, k, &enc(v), buf);
    }
}

/// `common.ConfigGroup`.
pub fn config_group(g: &ConfigGroup) -> Vec<u8> {
    let mut buf = Vec::new();
    put_uint(1, g.version, &mut buf);
    put_map(2, &g.groups, config_group, &mut buf);
    put_map(3, &g.values, |v| v.encode_to_vec(), &mut buf);
    put_map(4, &g.policies, |p| p.encode_to_vec(), &mut buf);
    put_string(5, &g.mod_policy, &mut buf);
    buf
}

/// `common.Config`.
pub fn config(c: &Config) -> Vec<u8> {
    let mut buf = Vec::new();
    put_uint(1, c.sequence, &mut buf);
    if let Some(g) = &c.channel_group {
        put_len_delimited(2, &config_group(g), &mut buf);
    }
    buf
}

/// `common.ConfigEnvelope`.
pub fn config_envelope(e: &ConfigEnvelope) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(c) = &e.config {
        put_len_delimited(1, &config(c), &mut buf);
    }
    if let Some(l) = &e.last_update {
        put_len_delimited(2, &l.encode_to_vec(), &mut buf);
    }
    buf
}

/// `common.ConfigUpdate`.
pub fn config_update(u: &ConfigUpdate) -> Vec<u8> {
    let mut buf = Vec::new();
    put_string(1, &u.channel_id, &mut buf);
    if let Some(g) = &u.read_set {
        put_len_delimited(2, &config_group(g), &mut buf);
    }
    if let Some(g) = &u.write_set {
        put_len_delimited(3, &config_group(g), &mut buf);
    }
    put_map(5, &u.isolated_data, |v| v.clone(), &mut buf);
    buf
}

/// `common.Capabilities`.
pub fn capabilities(c: &Capabilities) -> Vec<u8> {
    let mut buf = Vec::new();
    put_map(1, &c.capabilities, |v| v.encode_to_vec(), &mut buf);
    buf
}

/// `protos.ACLs`.
pub fn acls(a: &AcLs) -> Vec<u8> {
    let mut buf = Vec::new();
    put_map(1, &a.acls, |v| v.encode_to_vec(), &mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::common::{Capability, ConfigValue};

    #[test]
    fn capabilities_entry_has_empty_value_field() {
        let mut c = Capabilities::default();
        c.capabilities.insert("V2_0".into(), Capability {});
        // 0a 08 | 0a 04 "V2_0" | 12 00
        assert_eq!(capabilities(&c), b"\x0a\x08\x0a\x04V2_0\x12\x00".to_vec());
        assert_eq!(
            Capabilities::decode(capabilities(&c).as_slice()).unwrap(),
            c
        );
    }

    #[test]
    fn config_group_round_trips_through_prost() {
        let mut g = ConfigGroup {
            version: 3,
            mod_policy: "Admins".into(),
            ..Default::default()
        };
        g.values.insert("Consortium".into(), ConfigValue::default());
        g.groups
            .insert("Application".into(), ConfigGroup::default());
        let bytes = config_group(&g);
        assert_eq!(ConfigGroup::decode(bytes.as_slice()).unwrap(), g);
        assert!(bytes.len() > g.encode_to_vec().len());
    }
}
