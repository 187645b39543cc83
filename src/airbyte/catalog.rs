//! The configured catalog: which streams a sync writes and how.

use crate::failure::{Failure, Kind};
use crate::json::without_bom;
use serde::Deserialize;
use std::collections::HashMap;
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
    /// The refresh generation this sync writes (absent in old catalogs).
    pub generation_id: Option<i64>,
    /// The oldest generation to keep (absent in old catalogs).
    pub minimum_generation_id: Option<i64>,
    /// The sync's ID (absent in old catalogs).
    pub sync_id: Option<i64>,
}

impl CatalogStream {
    /// `namespace.name`, or `name`, for messages.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// What Kinesis cannot do of what the stream's sync mode asks, when it
    /// asks for more than appending; every record is appended whatever the mode.
    pub fn sync_mode_caveat(&self) -> Option<String> {
        let what = match self.destination_sync_mode.as_str() {
            "append" => return None,
            "overwrite" => "which would replace the stream's data: Kinesis cannot delete records, so the records already in the stream stay until its retention period ends",
            "append_dedup" => "which would deduplicate on the primary key: Kinesis cannot deduplicate or update records, so every record is appended, duplicates included (consumers can keep the latest per key)",
            "update" | "soft_delete" => "which would update or delete records: Kinesis cannot change or delete a record once written",
            _ => "a mode this destination does not know: Kinesis can only append records",
        };
        Some(format!(
            "stream `{}` asks for destination sync mode `{}`, {what}; its records are written as append",
            self.display_name(),
            self.destination_sync_mode
        ))
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
    generation_id: Option<i64>,
    minimum_generation_id: Option<i64>,
    sync_id: Option<i64>,
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
                    generation_id: s.generation_id,
                    minimum_generation_id: s.minimum_generation_id,
                    sync_id: s.sync_id,
                })
                .collect(),
        })
    }

    /// A constant-time index of the streams by namespace and name.
    pub fn index(&self) -> StreamIndex {
        let mut index = StreamIndex::default();
        for (i, s) in self.streams.iter().enumerate() {
            let namespaces = index.by_name.entry(s.name.clone()).or_default();
            // The first of two equal streams is the one records go to.
            if !namespaces.iter().any(|(ns, _)| *ns == s.namespace) {
                namespaces.push((s.namespace.clone(), i));
            }
        }
        index
    }
}

/// Finds a catalog stream by namespace and name without allocating: by name,
/// then among the few namespaces that share it.
#[derive(Debug, Default)]
pub struct StreamIndex {
    by_name: HashMap<String, Vec<(Option<String>, usize)>>,
}

impl StreamIndex {
    /// The position of the stream with this namespace and name.
    pub fn find(&self, namespace: Option<&str>, name: &str) -> Option<usize> {
        // An empty namespace is no namespace, as in the catalog.
        let namespace = namespace.filter(|ns| !ns.is_empty());
        self.by_name
            .get(name)?
            .iter()
            .find(|(ns, _)| ns.as_deref() == namespace)
            .map(|&(_, i)| i)
    }
}

impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Failure {
        Failure::new(Kind::Config, e.to_string())
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
        let index = c.index();
        assert_eq!(index.find(Some("p"), "u"), Some(0));
        assert_eq!(index.find(None, "u"), None);
        assert_eq!(index.find(None, "v"), Some(1));
        assert_eq!(index.find(Some("p"), "v"), None);
        assert!(c.streams.iter().all(|s| s.sync_mode_caveat().is_none()));
        assert_eq!(c.streams[0].generation_id, None);
    }

    #[test]
    fn rejects_bad_catalogs() {
        assert!(Catalog::from_json(r#"{"streams":[]}"#)
            .unwrap_err()
            .0
            .contains("no streams"));
        assert!(Catalog::from_json("{}").is_err());
        assert!(Catalog::from_json("nope").is_err());
    }

    #[test]
    fn takes_every_sync_mode_and_the_refresh_ids() {
        let c = Catalog::from_json(
            r#"{"streams":[
              {"stream":{"name":"a"},"destination_sync_mode":"overwrite","generation_id":7,"minimum_generation_id":7,"sync_id":42},
              {"stream":{"name":"b"},"destination_sync_mode":"append_dedup","primary_key":[["id"]]},
              {"stream":{"name":"c"},"destination_sync_mode":"soft_delete"},
              {"stream":{"name":"d"},"destination_sync_mode":"some_future_mode"}]}"#,
        )
        .unwrap();
        let a = &c.streams[0];
        assert_eq!(
            (a.generation_id, a.minimum_generation_id, a.sync_id),
            (Some(7), Some(7), Some(42))
        );
        let caveats: Vec<String> = c
            .streams
            .iter()
            .filter_map(|s| s.sync_mode_caveat())
            .collect();
        assert_eq!(caveats.len(), 4);
        assert!(
            caveats[0].contains("cannot delete records"),
            "{}",
            caveats[0]
        );
        assert!(caveats[1].contains("cannot deduplicate"));
        assert!(caveats[3].contains("some_future_mode"));
    }
}
