//! The JSON form of the wire protocol's bytes, as `leeward_call` takes and gives them:
//! a msgpack bin value is `{"$bytes": "<base64, RFC 4648, padded>"}` both ways
//! (libleeward/jsonwire.py is the reference).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tagged {
    #[serde(rename = "$bytes")]
    bytes: String,
}

/// Decodes one `{"$bytes": ...}` value.
pub(crate) fn decode(value: &serde_json::Value) -> Option<Vec<u8>> {
    let tagged = Tagged::deserialize(value).ok()?;
    STANDARD.decode(tagged.bytes).ok()
}

/// `#[serde(with = "wire::bytes")]` for a `Vec<u8>` field.
pub(crate) mod bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        Tagged { bytes: STANDARD.encode(data) }.serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let tagged = Tagged::deserialize(deserializer)?;
        STANDARD.decode(tagged.bytes).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "wire::bytes_map")]` for a `BTreeMap<String, Vec<u8>>` field (files).
pub(crate) mod bytes_map {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Item(#[serde(with = "super::bytes")] Vec<u8>);

    pub(crate) fn serialize<S: Serializer>(files: &BTreeMap<String, Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(files.iter().map(|(name, data)| (name, Tagged { bytes: STANDARD.encode(data) })))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let items = BTreeMap::<String, Item>::deserialize(deserializer)?;
        Ok(items.into_iter().map(|(name, Item(data))| (name, data)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Sample {
        #[serde(with = "bytes")]
        data: Vec<u8>,
        #[serde(with = "bytes_map")]
        files: BTreeMap<String, Vec<u8>>,
    }

    #[test]
    fn bytes_round_trip_in_the_tagged_form() {
        let sample = Sample { data: b"hi\n\0".to_vec(), files: BTreeMap::from([("a.bin".into(), vec![0xff, 0])]) };
        let json = serde_json::to_string(&sample).unwrap();
        assert_eq!(json, r#"{"data":{"$bytes":"aGkKAA=="},"files":{"a.bin":{"$bytes":"/wA="}}}"#);
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), sample);
    }

    #[test]
    fn malformed_bytes_are_refused() {
        for bad in [r#"{"$bytes":"not base64!"}"#, r#"{"$bytes":"aGk=","x":1}"#, r#""plain""#] {
            let json = format!(r#"{{"data":{bad},"files":{{}}}}"#);
            assert!(serde_json::from_str::<Sample>(&json).is_err(), "{bad}");
        }
        assert_eq!(decode(&serde_json::json!({"$bytes": "aGk="})), Some(b"hi".to_vec()));
        assert_eq!(decode(&serde_json::json!("aGk=")), None);
    }
}
