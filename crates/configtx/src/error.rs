//! Error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading a configtx.yaml, encoding a
/// channel configuration or inspecting a block.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML document could not be parsed.
    #[error("error parsing configtx YAML: {0}")]
    Yaml(String),
    /// A configuration value is malformed or missing.
    #[error("{0}")]
    Config(String),
    /// A policy rule could not be parsed.
    #[error("{0}")]
    Policy(String),
    /// An MSP directory could not be loaded.
    #[error("{0}")]
    Msp(String),
    /// Encoding the channel configuration failed.
    #[error("{0}")]
    Encode(String),
    /// A protobuf message could not be decoded.
    #[error("{0}")]
    Decode(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Prefixes the message with some context (like Go's `errors.Wrap`).
    pub fn context(self, ctx: impl std::fmt::Display) -> Self {
        match self {
            Error::Yaml(m) => Error::Yaml(format!("{ctx}: {m}")),
            Error::Config(m) => Error::Config(format!("{ctx}: {m}")),
            Error::Policy(m) => Error::Policy(format!("{ctx}: {m}")),
            Error::Msp(m) => Error::Msp(format!("{ctx}: {m}")),
            Error::Encode(m) => Error::Encode(format!("{ctx}: {m}")),
            Error::Decode(m) => Error::Decode(format!("{ctx}: {m}")),
            Error::Io { path, source } => Error::Io {
                path,
                source: std::io::Error::new(source.kind(), format!("{ctx}: {source}")),
            },
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
