//! `configtxgen`: Fabric's configtx generator, flag-compatible with the Go
//! tool (single-dash flags as Go's `flag` package parses them; double dashes
//! are accepted too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::exit;

use fabric_configtx::encoder::{self, keys};
use fabric_configtx::inspect::{group_json, GroupKind};
use fabric_configtx::{genesis, update, GenesisFormat, Profile, TopLevel};
use fabric_protos::common::ConfigUpdateEnvelope;
use prost::Message;

const STRING_FLAGS: &[(&str, &str)] = &[
    ("asOrg", "Performs the config generation as a particular organization (by name), only including values in the write set that org (likely) has privilege to set"),
    ("channelCreateTxBaseProfile", "Specifies a profile to consider as the orderer system channel current state to allow modification of non-application parameters during channel create tx generation. Only valid in conjunction with 'outputCreateChannelTx'."),
    ("channelID", "The channel ID to use in the configtx"),
    ("configPath", "The path containing the configuration to use (if set)"),
    ("genesisFormat", "Genesis block metadata layout: 'v2' (default, Fabric 2.x) or 'v1.4'"),
    ("inspectBlock", "Prints the configuration contained in the block at the specified path"),
    ("inspectChannelCreateTx", "Prints the configuration contained in the transaction at the specified path"),
    ("outputAnchorPeersUpdate", "[DEPRECATED] Creates a config update to update an anchor peer (works only with the default channel creation, and only for the first update)"),
    ("outputBlock", "The path to write the genesis block to (if set)"),
    ("outputCreateChannelTx", "The path to write a channel creation configtx to (if set)"),
    ("printOrg", "Prints the definition of an organization as JSON. (useful for adding an org to a channel manually)"),
    ("profile", "The profile from configtx.yaml to use for generation."),
];
const BOOL_FLAGS: &[(&str, &str)] = &[("version", "Show version information")];

fn usage() {
    eprintln!("Usage of configtxgen:");
    let mut all: Vec<(&str, &str, bool)> =
        STRING_FLAGS.iter().map(|(n, h)| (*n, *h, false)).collect();
    all.extend(BOOL_FLAGS.iter().map(|(n, h)| (*n, *h, true)));
    all.sort();
    for (name, help, is_bool) in all {
        if is_bool {
            eprintln!("  -{name}\n    \t{help}");
        } else {
            eprintln!("  -{name} string\n    \t{help}");
        }
    }
}

struct Flags {
    strings: BTreeMap<&'static str, String>,
    version: bool,
}

impl Flags {
    fn get(&self, name: &str) -> &str {
        self.strings.get(name).map(String::as_str).unwrap_or("")
    }
}

fn parse_flags(args: &[String]) -> Flags {
    let mut flags = Flags {
        strings: BTreeMap::new(),
        version: false,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            break;
        };
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            eprintln!("bad flag syntax: {arg}");
            usage();
            exit(2);
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            usage();
            exit(0);
        }
        if let Some((n, _)) = BOOL_FLAGS.iter().find(|(n, _)| *n == name) {
            let v = match inline.as_deref() {
                None => true,
                Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
                Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
                Some(v) => {
                    eprintln!("invalid boolean value {v:?} for -{n}: parse error");
                    usage();
                    exit(2);
                }
            };
            if *n == "version" {
                flags.version = v;
            }
        } else if let Some((n, _)) = STRING_FLAGS.iter().find(|(n, _)| *n == name) {
            let v = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    match args.get(i) {
                        Some(v) => v.clone(),
                        None => {
                            eprintln!("flag needs an argument: -{n}");
                            usage();
                            exit(2);
                        }
                    }
                }
            };
            flags.strings.insert(n, v);
        } else {
            eprintln!("flag provided but not defined: -{name}");
            usage();
            exit(2);
        }
        i += 1;
    }
    flags
}

fn info(msg: impl std::fmt::Display) {
    eprintln!("INFO [common.tools.configtxgen] {msg}");
}

fn fatal(msg: impl std::fmt::Display) -> ! {
    eprintln!("FATA [common.tools.configtxgen] {msg}");
    exit(1);
}

/// The directory holding configtx.yaml: `-configPath`, else `FABRIC_CFG_PATH`,
/// else the current directory or `/etc/hyperledger/fabric`.
fn config_dir(config_path: &str) -> PathBuf {
    if !config_path.is_empty() {
        return PathBuf::from(config_path);
    }
    if let Ok(p) = std::env::var("FABRIC_CFG_PATH") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    for cand in [".", "/etc/hyperledger/fabric"] {
        if Path::new(cand).join("configtx.yaml").is_file() {
            return PathBuf::from(cand);
        }
    }
    PathBuf::from(".")
}

fn load_top(config_path: &str) -> TopLevel {
    let dir = config_dir(config_path);
    match TopLevel::load(&dir) {
        Ok(t) => {
            info(format_args!(
                "Loaded configuration: {}",
                dir.join("configtx.yaml").display()
            ));
            t
        }
        Err(e) => {
            eprintln!(
                "ERRO [common.tools.configtxgen] Could not find or read configtx.yaml ({e}). Please make sure that FABRIC_CFG_PATH or -configPath is set to a path which contains configtx.yaml"
            );
            exit(1);
        }
    }
}

fn load_profile(top: &TopLevel, name: &str) -> Profile {
    match top.profile(name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "ERRO [common.tools.configtxgen] {e}. Please make sure that FABRIC_CFG_PATH or -configPath is set to a path which contains configtx.yaml with the specified profile"
            );
            exit(1);
        }
    }
}

fn write_file(path: &str, data: &[u8]) -> std::io::Result<()> {
    let p = Path::new(path);
    if let Some(dir) = p.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(p, data)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o640));
    }
    Ok(())
}

fn do_output_anchor_peers_update(
    profile: &Profile,
    channel_id: &str,
    path: &str,
    as_org: &str,
) -> Result<(), String> {
    info("Generating anchor peer update");
    if as_org.is_empty() {
        return Err("must specify an organization to update the anchor peer for".into());
    }
    if profile.application.is_none() {
        return Err("cannot update anchor peers without an application section".into());
    }
    let mut original = encoder::new_channel_group(profile)
        .map_err(|e| format!("error parsing profile as channel group: {e}"))?;
    let app = original
        .groups
        .get_mut(keys::APPLICATION_GROUP)
        .ok_or("missing application group")?;
    app.version = 1;
    let updated = original.clone();
    let org = original
        .groups
        .get_mut(keys::APPLICATION_GROUP)
        .and_then(|a| a.groups.get_mut(as_org))
        .ok_or_else(|| format!("org with name '{as_org}' does not exist in config"))?;
    if org.values.remove(keys::ANCHOR_PEERS).is_none() {
        return Err(format!(
            "org '{as_org}' does not have any anchor peers defined"
        ));
    }
    let mut updt = update::compute(&original, &updated)
        .map_err(|e| format!("could not compute update: {e}"))?;
    updt.channel_id = channel_id.to_string();
    let cue = ConfigUpdateEnvelope {
        config_update: fabric_configtx::gowire::config_update(&updt),
        signatures: vec![],
    };
    let env = genesis::config_update_tx(channel_id, &cue);
    info("Writing anchor peer update");
    write_file(path, &env.encode_to_vec())
        .map_err(|e| format!("Error writing channel anchor peer update: {e}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = parse_flags(&args);

    let output_block = flags.get("outputBlock");
    let output_create = flags.get("outputCreateChannelTx");
    let output_anchor = flags.get("outputAnchorPeersUpdate");
    let channel_id = flags.get("channelID");
    let config_path = flags.get("configPath");

    if channel_id.is_empty()
        && (!output_block.is_empty() || !output_create.is_empty() || !output_anchor.is_empty())
    {
        fatal("Missing channelID, please specify it with '-channelID'");
    }

    if flags.version {
        println!(
            "configtxgen:\n Version: {} (fabric-configtx, Rust)\n Commit SHA: development build\n OS/Arch: {}/{}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        );
        exit(0);
    }

    let format = match flags.get("genesisFormat") {
        "" | "v2" | "2" | "v2.x" => GenesisFormat::V2,
        "v1.4" | "1.4" => GenesisFormat::V1_4,
        other => fatal(format_args!(
            "unknown -genesisFormat '{other}' (expected 'v2' or 'v1.4')"
        )),
    };

    info("Loading configuration");
    let needs_profile =
        !output_block.is_empty() || !output_create.is_empty() || !output_anchor.is_empty();
    let base_name = flags.get("channelCreateTxBaseProfile");
    let mut top = None;
    let mut profile = None;
    if needs_profile {
        let name = flags.get("profile");
        if name.is_empty() {
            fatal("The '-profile' is required when '-outputBlock', '-outputChannelCreateTx', or '-outputAnchorPeersUpdate' is specified");
        }
        let t = top.get_or_insert_with(|| load_top(config_path));
        profile = Some(load_profile(t, name));
    }
    let mut base_profile = None;
    if !base_name.is_empty() {
        if output_create.is_empty() {
            eprintln!("WARN [common.tools.configtxgen] Specified 'channelCreateTxBaseProfile', but did not specify 'outputCreateChannelTx', 'channelCreateTxBaseProfile' will not affect output.");
        }
        let t = top.get_or_insert_with(|| load_top(config_path));
        base_profile = Some(load_profile(t, base_name));
    }

    if !output_block.is_empty() {
        let p = profile.as_ref().expect("profile loaded");
        info("Generating genesis block");
        if p.consortiums.is_some() {
            info("Creating system channel genesis block");
        } else if p.orderer.is_some() {
            info("Creating application channel genesis block");
        }
        let block = genesis::genesis_block_from_profile_with(p, channel_id, format)
            .unwrap_or_else(|e| fatal(format_args!("Error on outputBlock: {e}")));
        info("Writing genesis block");
        if let Err(e) = write_file(output_block, &block.encode_to_vec()) {
            fatal(format_args!(
                "Error on outputBlock: error writing genesis block: {e}"
            ));
        }
    }

    if !output_create.is_empty() {
        let p = profile.as_ref().expect("profile loaded");
        info("Generating new channel configtx");
        let env = genesis::channel_creation_tx(channel_id, p, base_profile.as_ref())
            .unwrap_or_else(|e| fatal(format_args!("Error on outputChannelCreateTx: {e}")));
        info("Writing new channel tx");
        if let Err(e) = write_file(output_create, &env.encode_to_vec()) {
            fatal(format_args!(
                "Error on outputChannelCreateTx: error writing channel create tx: {e}"
            ));
        }
    }

    let inspect_block = flags.get("inspectBlock");
    if !inspect_block.is_empty() {
        info("Inspecting block");
        let data = std::fs::read(inspect_block).unwrap_or_else(|_| {
            fatal(format_args!(
                "Error on inspectBlock: could not read block {inspect_block}"
            ))
        });
        info("Parsing genesis block");
        match fabric_configtx::inspect_block(&data) {
            Ok(s) => print!("{s}"),
            Err(e) => fatal(format_args!("Error on inspectBlock: {e}")),
        }
    }

    let inspect_tx = flags.get("inspectChannelCreateTx");
    if !inspect_tx.is_empty() {
        info("Inspecting transaction");
        let data = std::fs::read(inspect_tx).unwrap_or_else(|e| {
            fatal(format_args!(
                "Error on inspectChannelCreateTx: could not read channel create tx: {e}"
            ))
        });
        info("Parsing transaction");
        match fabric_configtx::inspect_envelope(&data) {
            Ok(s) => print!("{s}"),
            Err(e) => fatal(format_args!("Error on inspectChannelCreateTx: {e}")),
        }
    }

    if !output_anchor.is_empty() {
        let p = profile.as_ref().expect("profile loaded");
        if let Err(e) =
            do_output_anchor_peers_update(p, channel_id, output_anchor, flags.get("asOrg"))
        {
            fatal(format_args!("Error on inspectChannelCreateTx: {e}"));
        }
    }

    let print_org = flags.get("printOrg");
    if !print_org.is_empty() {
        let t = top.get_or_insert_with(|| load_top(config_path));
        let Some(org) = t.organization(print_org) else {
            fatal(format_args!(
                "Error on printOrg: organization {print_org} not found"
            ));
        };
        let json = encoder::new_orderer_org_group(org)
            .map_err(|e| format!("bad org definition for org {}: {e}", org.name))
            .and_then(|g| {
                group_json(&g, GroupKind::OrdererOrg)
                    .map_err(|e| format!("malformed org definition for org: {}: {e}", org.name))
            })
            .unwrap_or_else(|e| fatal(format_args!("Error on printOrg: {e}")));
        print!("{}", json.to_pretty());
    }
}
