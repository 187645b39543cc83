//! The configured catalog: which streams a sync writes and how.

use crate::json::without_bom;
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// One stream of the configured catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogStream {
    /// The namespace, if any (empty counts as none).
    pub namespace: Option<String>,
    /// The stream name.
    pub name: String,
    /// `destination_sync_mode`, e.g. `append`.
    pub destination_sync_mode: String,
    /// Primary key paths, each a list of field names.
    pub primary_key: Vec<Vec<String>>,
}

impl CatalogStream {
    /// `namespace.name`, or `name`, for messages.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A configured catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// Its streams, in catalog order.
    pub streams: Vec<CatalogStream>,
}

/// A catalog that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError(pub String);

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CatalogError {}

#[derive(Deserialize)]
struct WireCatalog {
    streams: Vec<WireConfigured>,
}

#[derive(Deserialize)]
struct WireConfigured {
    stream: WireStream,
    destination_sync_mode: Option<String>,
    #[serde(default)]
    primary_key: Option<Vec<Vec<String>>>,
}

#[derive(Deserialize)]
struct WireStream {
    name: String,
    namespace: Option<String>,
}

impl Catalog {
    /// Reads a configured catalog file.
    pub fn from_file(path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CatalogError(format!("cannot read catalog file {}: {e}", path.display()))
        })?;
        Catalog::from_json(without_bom(&text)).map_err(|CatalogError(why)| {
            CatalogError(format!("catalog file {}: {why}", path.display()))
        })
    }

    /// Reads a configured catalog from JSON text.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let wire: WireCatalog = serde_json::from_str(text)
            .map_err(|e| CatalogError(format!("is not a configured catalog: {e}")))?;
        if wire.streams.is_empty() {
            return Err(CatalogError(
                "has no streams: there is nothing to write".into(),
            ));
        }
        Ok(Catalog {
            streams: wire
                .streams
                .into_iter()
                .map(|s| CatalogStream {
                    namespace: s.stream.namespace.filter(|n| !n.is_empty()),
                    name: s.stream.name,
                    destination_sync_mode: s
                        .destination_sync_mode
                        .unwrap_or_else(|| "append".into()),
                    primary_key: s.primary_key.unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// The first stream whose sync mode this destination cannot honour.
    pub fn unsupported_stream(&self) -> Option<&CatalogStream> {
        self.streams
            .iter()
            .find(|s| s.destination_sync_mode != "append")
    }

    /// The index of the stream with this namespace and name.
    pub fn position(&self, namespace: Option<&str>, name: &str) -> Option<usize> {
        self.streams
            .iter()
            .position(|s| s.name == name && s.namespace.as_deref() == namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_streams() {
        let c = Catalog::from_json(
            r#"{"streams":[{"stream":{"name":"u","namespace":"p","json_schema":{}},"sync_mode":"full_refresh",
            "destination_sync_mode":"append","primary_key":[["id"]]},{"stream":{"name":"v","namespace":""}}]}"#,
        )
        .unwrap();
        assert_eq!(c.streams.len(), 2);
        assert_eq!(c.streams[0].primary_key, vec![vec!["id".to_string()]]);
        assert_eq!(c.streams[1].namespace, None);
        assert_eq!(c.position(Some("p"), "u"), Some(0));
        assert_eq!(c.position(None, "u"), None);
        assert!(c.unsupported_stream().is_none());
    }

    #[test]
    fn rejects_bad_catalogs() {
        assert!(Catalog::from_json(r#"{"streams":[]}"#)
            .unwrap_err()
            .0
            .contains("no streams"));
        assert!(Catalog::from_json("{}").is_err());
        assert!(Catalog::from_json("nope").is_err());
        let c = Catalog::from_json(
            r#"{"streams":[{"stream":{"name":"u"},"destination_sync_mode":"overwrite"}]}"#,
        )
        .unwrap();
        assert_eq!(c.unsupported_stream().unwrap().name, "u");
    }
}
