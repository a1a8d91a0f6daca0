//! Errors returned while loading the orderer configuration.

use std::path::PathBuf;

/// An error found while loading or validating the configuration.
///
/// Every key-related variant names the full key path in Fabric's spelling
/// (for example `General.ListenPort`), and `Display` starts with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file (or a `File:` referenced from it) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML text is malformed.
    #[error("invalid YAML in {origin}: {message}")]
    Yaml { origin: String, message: String },
    /// A key that the orderer does not know.
    #[error("{key}: unknown configuration key")]
    UnknownKey { key: String },
    /// A value that cannot be used; `message` says why.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// Several errors; each is reported.
    #[error("{}", join(.0))]
    Multiple(Vec<ConfigError>),
}

fn join(errors: &[ConfigError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!(
        "{} configuration errors: {}",
        errors.len(),
        parts.join("; ")
    )
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Folds a list of errors into one (`None` when empty).
    pub(crate) fn from_list(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Multiple(errors)),
        }
    }

    /// The key paths this error is about (several for [`ConfigError::Multiple`]).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ConfigError::UnknownKey { key } | ConfigError::Invalid { key, .. } => vec![key],
            ConfigError::Multiple(list) => list.iter().flat_map(ConfigError::keys).collect(),
            ConfigError::Io { .. } | ConfigError::Yaml { .. } => Vec::new(),
        }
    }
}
