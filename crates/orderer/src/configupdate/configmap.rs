//! The flat view of a config tree used by config update validation
//! (Fabric's `common/configtx` "config map"): every group, value and policy
//! under a fully qualified key such as `[Value]  /Channel/Orderer/BatchSize`,
//! and the way back from such a map to a tree.

use std::collections::BTreeMap;

use fabric_protos::common::{ConfigGroup, ConfigPolicy, ConfigValue};

/// Key prefix of groups (two spaces, as in Fabric).
pub const GROUP_PREFIX: &str = "[Group]  ";
/// Key prefix of values (two spaces).
pub const VALUE_PREFIX: &str = "[Value]  ";
/// Key prefix of policies (one space).
pub const POLICY_PREFIX: &str = "[Policy] ";
/// Separator of path elements.
pub const PATH_SEPARATOR: &str = "/";
/// The root group's key in channel configs.
pub const ROOT_GROUP: &str = "Channel";
/// Longest config ID and channel ID Fabric accepts.
pub const MAX_ID_LENGTH: usize = 249;

/// When the map holds this key (the orderer group has capabilities), empty
/// mod policies are upgraded to [`DEFAULT_MOD_POLICY`] on the way back to a
/// tree (Fabric v1.1 behaviour kept for compatibility).
const ORDERER_CAPABILITIES_KEY: &str = "[Value]  /Channel/Orderer/Capabilities";
/// The mod policy given to elements with none, see [`ORDERER_CAPABILITIES_KEY`].
const DEFAULT_MOD_POLICY: &str = "Admins";

/// A group without its members' content: its own version and mod policy and
/// the names of its members (the members are separate map entries).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupShell {
    /// The group's version.
    pub version: u64,
    /// The group's mod policy.
    pub mod_policy: String,
    /// Sub-group names.
    pub groups: Vec<String>,
    /// Value names.
    pub values: Vec<String>,
    /// Policy names.
    pub policies: Vec<String>,
}

impl GroupShell {
    fn of(g: &ConfigGroup) -> Self {
        GroupShell {
            version: g.version,
            mod_policy: g.mod_policy.clone(),
            groups: g.groups.keys().cloned().collect(),
            values: g.values.keys().cloned().collect(),
            policies: g.policies.keys().cloned().collect(),
        }
    }
}

/// One element of a config tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    /// A group (members listed by name).
    Group(GroupShell),
    /// A value.
    Value(ConfigValue),
    /// A policy.
    Policy(ConfigPolicy),
}

/// An element with its name and the path of its parent group.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The element's name in its parent (the root group's is `Channel`).
    pub key: String,
    /// Names of the enclosing groups from the root (`["Channel", "Orderer"]`
    /// for `[Value]  /Channel/Orderer/BatchSize`; empty for the root group).
    pub path: Vec<String>,
    /// The element.
    pub element: Element,
}

impl Item {
    /// The element's version.
    pub fn version(&self) -> u64 {
        match &self.element {
            Element::Group(g) => g.version,
            Element::Value(v) => v.version,
            Element::Policy(p) => p.version,
        }
    }

    /// The element's mod policy.
    pub fn mod_policy(&self) -> &str {
        match &self.element {
            Element::Group(g) => &g.mod_policy,
            Element::Value(v) => &v.mod_policy,
            Element::Policy(p) => &p.mod_policy,
        }
    }

    /// Whether the element is a group.
    pub fn is_group(&self) -> bool {
        matches!(self.element, Element::Group(_))
    }
}

/// Fully qualified key to element.
pub type ConfigMap = BTreeMap<String, Item>;

/// Fabric's config ID rule: 1..=249 characters of `[a-zA-Z0-9.-]`, not `.`
/// or `..`.
pub fn validate_config_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("config ID illegal, cannot be empty".into());
    }
    if id.len() > MAX_ID_LENGTH {
        return Err(format!(
            "config ID illegal, cannot be longer than {MAX_ID_LENGTH}"
        ));
    }
    if id == "." || id == ".." {
        return Err(format!("name '{id}' for config ID is not allowed"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(format!("config ID '{id}' contains illegal characters"));
    }
    Ok(())
}

fn insert(map: &mut ConfigMap, prefix: &str, item: Item) -> Result<(), String> {
    validate_config_id(&item.key)
        .map_err(|e| format!("illegal characters in key: {prefix}: {e}"))?;
    let mut fq = String::from(prefix);
    for p in &item.path {
        fq.push_str(PATH_SEPARATOR);
        fq.push_str(p);
    }
    fq.push_str(PATH_SEPARATOR);
    fq.push_str(&item.key);
    map.insert(fq, item);
    Ok(())
}

fn recurse(map: &mut ConfigMap, path: &mut Vec<String>, group: &ConfigGroup) -> Result<(), String> {
    let key = path.last().cloned().unwrap_or_default();
    let parent = path[..path.len().saturating_sub(1)].to_vec();
    insert(
        map,
        GROUP_PREFIX,
        Item {
            key,
            path: parent,
            element: Element::Group(GroupShell::of(group)),
        },
    )?;
    for (name, sub) in &group.groups {
        path.push(name.clone());
        let r = recurse(map, path, sub);
        path.pop();
        r?;
    }
    for (name, v) in &group.values {
        insert(
            map,
            VALUE_PREFIX,
            Item {
                key: name.clone(),
                path: path.clone(),
                element: Element::Value(v.clone()),
            },
        )?;
    }
    for (name, p) in &group.policies {
        insert(
            map,
            POLICY_PREFIX,
            Item {
                key: name.clone(),
                path: path.clone(),
                element: Element::Policy(p.clone()),
            },
        )?;
    }
    Ok(())
}

/// Flattens a tree whose root group is called `root` (`Channel`). An absent
/// tree gives an empty map.
pub fn map_config(group: Option<&ConfigGroup>, root: &str) -> Result<ConfigMap, String> {
    let mut map = ConfigMap::new();
    if let Some(g) = group {
        recurse(&mut map, &mut vec![root.to_string()], g)?;
    }
    Ok(map)
}

/// Rebuilds the tree rooted at `/<root>`: each group keeps the members its
/// map entry names, each member taken from the map. Entries no group names
/// are dropped.
pub fn config_map_to_group(map: &ConfigMap, root: &str) -> Result<ConfigGroup, String> {
    let upgrade = map.contains_key(ORDERER_CAPABILITIES_KEY);
    rebuild(&format!("{PATH_SEPARATOR}{root}"), map, upgrade, 0)
}

fn rebuild(
    path: &str,
    map: &ConfigMap,
    upgrade: bool,
    depth: usize,
) -> Result<ConfigGroup, String> {
    let group_path = format!("{GROUP_PREFIX}{path}");
    let item = map
        .get(&group_path)
        .ok_or_else(|| format!("missing group at path: {group_path}"))?;
    let Element::Group(shell) = &item.element else {
        return Err(format!("ConfigGroup not found at group path: {group_path}"));
    };
    if depth > 256 {
        return Err(format!("config tree too deep at group path: {group_path}"));
    }
    let mut out = ConfigGroup {
        version: shell.version,
        mod_policy: shell.mod_policy.clone(),
        ..Default::default()
    };
    for name in &shell.groups {
        let sub = rebuild(
            &format!("{path}{PATH_SEPARATOR}{name}"),
            map,
            upgrade,
            depth + 1,
        )?;
        out.groups.insert(name.clone(), sub);
    }
    for name in &shell.values {
        let value_path = format!("{VALUE_PREFIX}{path}{PATH_SEPARATOR}{name}");
        let item = map
            .get(&value_path)
            .ok_or_else(|| format!("missing value at path: {value_path}"))?;
        let Element::Value(v) = &item.element else {
            return Err(format!("ConfigValue not found at value path: {value_path}"));
        };
        out.values.insert(name.clone(), v.clone());
    }
    for name in &shell.policies {
        let policy_path = format!("{POLICY_PREFIX}{path}{PATH_SEPARATOR}{name}");
        let item = map
            .get(&policy_path)
            .ok_or_else(|| format!("missing policy at path: {policy_path}"))?;
        let Element::Policy(p) = &item.element else {
            return Err(format!(
                "ConfigPolicy not found at policy path: {policy_path}"
            ));
        };
        out.policies.insert(name.clone(), p.clone());
    }
    if upgrade {
        if out.mod_policy.is_empty() {
            out.mod_policy = DEFAULT_MOD_POLICY.into();
        }
        for v in out.values.values_mut() {
            if v.mod_policy.is_empty() {
                v.mod_policy = DEFAULT_MOD_POLICY.into();
            }
        }
        for p in out.policies.values_mut() {
            if p.mod_policy.is_empty() {
                p.mod_policy = DEFAULT_MOD_POLICY.into();
            }
        }
    }
    Ok(out)
}
