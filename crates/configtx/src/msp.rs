//! Verifying MSP configuration from an MSP folder, like Fabric's
//! `msp.GetVerifyingMspConfig` (`msp/configbuilder.go`).
//!
//! Layout: `cacerts/` (required, non-empty), `admincerts/`,
//! `intermediatecerts/`, `crls/`, `tlscacerts/`, `tlsintermediatecerts/`
//! (read only when `tlscacerts/` is non-empty) and `config.yaml`
//! (`OrganizationalUnitIdentifiers`, `NodeOUs`). Files are read in file-name
//! order; files without PEM content are skipped with a warning; the file
//! bytes are kept verbatim.

use std::path::Path;

use fabric_protos::msp::{
    FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig,
};
use prost::Message;
use serde_json::Value;

use crate::config::MSP_TYPE_BCCSP;
use crate::error::{Error, Result};

fn has_pem(bytes: &[u8]) -> bool {
    matches!(pem::parse_many(bytes), Ok(v) if !v.is_empty())
}

/// `Ok(None)` when the directory does not exist.
fn pem_material(dir: &Path) -> Result<Option<Vec<Vec<u8>>>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Msp(format!(
                "could not read directory {}: {e}",
                dir.display()
            )))
        }
    };
    let mut names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let full = dir.join(&name);
        let Ok(md) = std::fs::metadata(&full) else {
            eprintln!("warning: failed to stat {}", full.display());
            continue;
        };
        if md.is_dir() {
            continue;
        }
        match std::fs::read(&full) {
            Ok(bytes) if has_pem(&bytes) => out.push(bytes),
            Ok(_) => eprintln!(
                "warning: failed reading file {}: no pem content",
                full.display()
            ),
            Err(e) => eprintln!("warning: failed reading file {}: {e}", full.display()),
        }
    }
    Ok(Some(out))
}

fn yaml_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?.get(key).filter(|v| !v.is_null())
}

fn yaml_str(v: &Value, key: &str) -> String {
    match yaml_get(v, key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn node_ou(dir: &Path, cfg: &Value, key: &str, what: &str) -> Option<FabricOuIdentifier> {
    let ou = yaml_get(cfg, key)?;
    let id = yaml_str(ou, "OrganizationalUnitIdentifier");
    if id.is_empty() {
        return None;
    }
    let cert_path = yaml_str(ou, "Certificate");
    let certificate = if cert_path.is_empty() {
        Vec::new()
    } else {
        let f = dir.join(&cert_path);
        match std::fs::read(&f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!(
                    "warning: failed loading {what} certificate at [{}]: [{e}]",
                    f.display()
                );
                Vec::new()
            }
        }
    };
    Some(FabricOuIdentifier {
        certificate,
        organizational_unit_identifier: id,
    })
}

/// Builds the `FabricMSPConfig` of an MSP folder (no signing identity).
pub fn fabric_msp_config(dir: &Path, mspid: &str) -> Result<FabricMspConfig> {
    let cacert_dir = dir.join("cacerts");
    let root_certs = match pem_material(&cacert_dir)? {
        Some(v) if !v.is_empty() => v,
        Some(_) => {
            return Err(Error::Msp(format!("could not load a valid ca certificate from directory {}", cacert_dir.display())))
        }
        None => {
            return Err(Error::Msp(format!(
                "could not load a valid ca certificate from directory {}: stat {}: no such file or directory",
                cacert_dir.display(),
                cacert_dir.display()
            )))
        }
    };
    let admins = pem_material(&dir.join("admincerts"))?.unwrap_or_default();
    let intermediate_certs = pem_material(&dir.join("intermediatecerts"))?.unwrap_or_default();
    let tls_root_certs = pem_material(&dir.join("tlscacerts"))?.unwrap_or_default();
    let tls_intermediate_certs = if tls_root_certs.is_empty() {
        Vec::new()
    } else {
        pem_material(&dir.join("tlsintermediatecerts"))?.unwrap_or_default()
    };
    let revocation_list = pem_material(&dir.join("crls"))?.unwrap_or_default();

    let mut ouis = Vec::new();
    let mut node_ous = None;
    let config_file = dir.join("config.yaml");
    if config_file.exists() {
        let raw = std::fs::read_to_string(&config_file).map_err(|e| {
            Error::Msp(format!(
                "failed loading configuration file at [{}]: {e}",
                config_file.display()
            ))
        })?;
        let cfg: Value = if raw.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str(&raw).map_err(|e| {
                Error::Msp(format!(
                    "failed unmarshalling configuration file at [{}]: {e}",
                    config_file.display()
                ))
            })?
        };
        if let Some(Value::Array(list)) = yaml_get(&cfg, "OrganizationalUnitIdentifiers") {
            for ou in list {
                let f = dir.join(yaml_str(ou, "Certificate"));
                let certificate = std::fs::read(&f).map_err(|e| {
                    Error::Msp(format!(
                        "failed loading OrganizationalUnit certificate at [{}]: {e}",
                        f.display()
                    ))
                })?;
                ouis.push(FabricOuIdentifier {
                    certificate,
                    organizational_unit_identifier: yaml_str(ou, "OrganizationalUnitIdentifier"),
                });
            }
        }
        if let Some(n) = yaml_get(&cfg, "NodeOUs") {
            if matches!(yaml_get(n, "Enable"), Some(Value::Bool(true))) {
                node_ous = Some(FabricNodeOUs {
                    enable: true,
                    client_ou_identifier: node_ou(dir, n, "ClientOUIdentifier", "ClientOU"),
                    peer_ou_identifier: node_ou(dir, n, "PeerOUIdentifier", "PeerOU"),
                    admin_ou_identifier: node_ou(dir, n, "AdminOUIdentifier", "AdminOU"),
                    orderer_ou_identifier: node_ou(dir, n, "OrdererOUIdentifier", "OrdererOU"),
                });
            }
        }
    }

    Ok(FabricMspConfig {
        name: mspid.to_string(),
        root_certs,
        intermediate_certs,
        admins,
        revocation_list,
        signing_identity: None,
        organizational_unit_identifiers: ouis,
        crypto_config: Some(FabricCryptoConfig {
            signature_hash_family: "SHA2".into(),
            identity_identifier_hash_function: "SHA256".into(),
        }),
        tls_root_certs,
        tls_intermediate_certs,
        fabric_node_ous: node_ous,
    })
}

/// `MSPConfig{type: FABRIC, config: FabricMSPConfig}` for an MSP folder.
pub fn verifying_msp_config(dir: &Path, mspid: &str, msp_type: &str) -> Result<MspConfig> {
    match msp_type {
        "" | MSP_TYPE_BCCSP => {
            let conf = fabric_msp_config(dir, mspid)?;
            Ok(MspConfig {
                r#type: 0,
                config: conf.encode_to_vec(),
            })
        }
        "idemix" => Err(Error::Msp(
            "idemix MSPs are not supported by this configtxgen".into(),
        )),
        other => Err(Error::Msp(format!("unknown MSP type '{other}'"))),
    }
}
