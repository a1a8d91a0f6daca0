//! Config update computation (Fabric's `configtxlator/update.Compute`):
//! the read set and write set that turn one channel group into another.

use std::collections::BTreeMap;

use fabric_protos::common::{ConfigGroup, ConfigPolicy, ConfigUpdate, ConfigValue};

use crate::error::{Error, Result};

struct MapDiff<T> {
    read: BTreeMap<String, T>,
    write: BTreeMap<String, T>,
    same: BTreeMap<String, T>,
    members_updated: bool,
}

/// A config leaf (policy or value): versioned, with a mod policy and a body.
trait Leaf {
    fn version(&self) -> u64;
    /// Same mod policy and body.
    fn same_content(&self, other: &Self) -> bool;
    /// `self`'s mod policy and body at `version`.
    fn at_version(&self, version: u64) -> Self;
    /// An empty leaf that only names `version` (a read-set entry).
    fn version_only(version: u64) -> Self;
}

impl Leaf for ConfigPolicy {
    fn version(&self) -> u64 {
        self.version
    }
    fn same_content(&self, other: &Self) -> bool {
        self.mod_policy == other.mod_policy && self.policy == other.policy
    }
    fn at_version(&self, version: u64) -> Self {
        ConfigPolicy {
            version,
            mod_policy: self.mod_policy.clone(),
            policy: self.policy.clone(),
        }
    }
    fn version_only(version: u64) -> Self {
        ConfigPolicy {
            version,
            ..Default::default()
        }
    }
}

impl Leaf for ConfigValue {
    fn version(&self) -> u64 {
        self.version
    }
    fn same_content(&self, other: &Self) -> bool {
        self.mod_policy == other.mod_policy && self.value == other.value
    }
    fn at_version(&self, version: u64) -> Self {
        ConfigValue {
            version,
            mod_policy: self.mod_policy.clone(),
            value: self.value.clone(),
        }
    }
    fn version_only(version: u64) -> Self {
        ConfigValue {
            version,
            ..Default::default()
        }
    }
}

/// The diff of a policy or value map: unchanged leaves go to `same` as
/// version-only entries, changed ones to `write` at version + 1, new ones to
/// `write` at version 0.
fn leaves_update<T: Leaf>(
    original: &BTreeMap<String, T>,
    updated: &BTreeMap<String, T>,
) -> MapDiff<T> {
    let mut d = MapDiff {
        read: BTreeMap::new(),
        write: BTreeMap::new(),
        same: BTreeMap::new(),
        members_updated: false,
    };
    for (name, orig) in original {
        let Some(upd) = updated.get(name) else {
            d.members_updated = true;
            continue;
        };
        if orig.same_content(upd) {
            d.same.insert(name.clone(), T::version_only(orig.version()));
        } else {
            d.write
                .insert(name.clone(), upd.at_version(orig.version() + 1));
        }
    }
    for (name, upd) in updated {
        if !original.contains_key(name) {
            d.members_updated = true;
            d.write.insert(name.clone(), upd.at_version(0));
        }
    }
    d
}

fn groups_update(
    original: &BTreeMap<String, ConfigGroup>,
    updated: &BTreeMap<String, ConfigGroup>,
) -> MapDiff<ConfigGroup> {
    let mut d = MapDiff {
        read: BTreeMap::new(),
        write: BTreeMap::new(),
        same: BTreeMap::new(),
        members_updated: false,
    };
    for (name, orig) in original {
        let Some(upd) = updated.get(name) else {
            d.members_updated = true;
            continue;
        };
        let (r, w, changed) = group_update(orig, upd);
        if !changed {
            d.same.insert(name.clone(), r);
            continue;
        }
        d.read.insert(name.clone(), r);
        d.write.insert(name.clone(), w);
    }
    for (name, upd) in updated {
        if original.contains_key(name) {
            continue;
        }
        d.members_updated = true;
        let (_, w, _) = group_update(&ConfigGroup::default(), upd);
        d.write.insert(
            name.clone(),
            ConfigGroup {
                version: 0,
                mod_policy: upd.mod_policy.clone(),
                policies: w.policies,
                values: w.values,
                groups: w.groups,
            },
        );
    }
    d
}

/// Returns (read set, write set, updated?) for one group.
pub fn group_update(
    original: &ConfigGroup,
    updated: &ConfigGroup,
) -> (ConfigGroup, ConfigGroup, bool) {
    let mut p = leaves_update(&original.policies, &updated.policies);
    let mut v = leaves_update(&original.values, &updated.values);
    let mut g = groups_update(&original.groups, &updated.groups);

    if !(p.members_updated
        || v.members_updated
        || g.members_updated
        || original.mod_policy != updated.mod_policy)
    {
        if p.read.is_empty()
            && p.write.is_empty()
            && v.read.is_empty()
            && v.write.is_empty()
            && g.read.is_empty()
            && g.write.is_empty()
        {
            let only = ConfigGroup {
                version: original.version,
                ..Default::default()
            };
            return (only.clone(), only, false);
        }
        return (
            ConfigGroup {
                version: original.version,
                policies: p.read,
                values: v.read,
                groups: g.read,
                mod_policy: String::new(),
            },
            ConfigGroup {
                version: original.version,
                policies: p.write,
                values: v.write,
                groups: g.write,
                mod_policy: String::new(),
            },
            true,
        );
    }

    for (k, s) in std::mem::take(&mut p.same) {
        p.read.insert(k.clone(), s.clone());
        p.write.insert(k, s);
    }
    for (k, s) in std::mem::take(&mut v.same) {
        v.read.insert(k.clone(), s.clone());
        v.write.insert(k, s);
    }
    for (k, s) in std::mem::take(&mut g.same) {
        g.read.insert(k.clone(), s.clone());
        g.write.insert(k, s);
    }
    (
        ConfigGroup {
            version: original.version,
            policies: p.read,
            values: v.read,
            groups: g.read,
            mod_policy: String::new(),
        },
        ConfigGroup {
            version: original.version + 1,
            policies: p.write,
            values: v.write,
            groups: g.write,
            mod_policy: updated.mod_policy.clone(),
        },
        true,
    )
}

/// The config update from `original` to `updated` (channel_id left empty).
pub fn compute(original: &ConfigGroup, updated: &ConfigGroup) -> Result<ConfigUpdate> {
    let (read, write, changed) = group_update(original, updated);
    if !changed {
        return Err(Error::Encode(
            "no differences detected between original and updated config".into(),
        ));
    }
    Ok(ConfigUpdate {
        channel_id: String::new(),
        read_set: Some(read),
        write_set: Some(write),
        isolated_data: BTreeMap::new(),
    })
}
