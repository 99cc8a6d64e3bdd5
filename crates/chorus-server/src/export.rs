//! A document's content as JSON: text as a string, maps as objects, arrays as arrays, XML as
//! markup, one entry per top-level shared type.
//!
//! A stored update does not say which kind each top-level type is (Yjs learns it when the
//! application calls `getText`, `getMap`...), so the kind is inferred from the content: a type
//! with keyed entries is a map, one with string content is text, anything else an array.

use std::thread;

use serde_json::{Map, Value};
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{Array, Doc, GetString, Map as _, Out, ReadTxn, Transact, Update};

/// Stack for the conversion: yrs converts nested types recursively, so a deeply nested
/// document must not be able to overflow the caller's stack.
const CONVERSION_STACK: usize = 256 * 1024 * 1024;

/// Converts a Yjs v1 update holding a whole document to JSON.
///
/// # Errors
/// [`ExportError`]: the bytes are not a Yjs update, or the conversion failed.
pub fn doc_to_json(update: &[u8]) -> Result<Value, ExportError> {
    let update = update.to_vec();
    thread::Builder::new()
        .name("doc-to-json".into())
        .stack_size(CONVERSION_STACK)
        .spawn(move || convert(&update))
        .map_err(ExportError::Thread)?
        .join()
        .map_err(|_| ExportError::Panicked)?
}

/// Why a document could not be turned into JSON.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The bytes are not a Yjs v1 update.
    #[error("not a Yjs v1 update: {0}")]
    NotAnUpdate(yrs::encoding::read::Error),
    /// yrs refused to apply it.
    #[error("the update does not apply: {0}")]
    DoesNotApply(String),
    /// The conversion thread could not start.
    #[error("cannot start the conversion: {0}")]
    Thread(std::io::Error),
    /// The conversion panicked.
    #[error("the document could not be converted")]
    Panicked,
}

fn convert(update: &[u8]) -> Result<Value, ExportError> {
    let doc = load(update)?;
    let roots: Vec<(String, bool)> = {
        let txn = doc.transact();
        txn.root_refs()
            .map(|(name, out)| (name.to_owned(), matches!(out, Out::UndefinedRef(_))))
            .collect()
    };
    let mut object = Map::new();
    for (name, undefined) in roots {
        let value = if undefined {
            infer(update, &name)?
        } else {
            let txn = doc.transact();
            let out = txn
                .root_refs()
                .find(|(n, _)| *n == name)
                .map(|(_, out)| out);
            out.map_or(Value::Null, |out| to_value(&out.to_json(&txn)))
        };
        object.insert(name, value);
    }
    Ok(Value::Object(object))
}

/// Reads the root `name` as a map, then as text, then as an array, each on a fresh copy (a
/// root's kind can be set only once per document).
fn infer(update: &[u8], name: &str) -> Result<Value, ExportError> {
    let doc = load(update)?;
    let map = doc.get_or_insert_map(name);
    let txn = doc.transact();
    if map.len(&txn) > 0 {
        return Ok(to_value(&map.to_json(&txn)));
    }
    drop(txn);
    let doc = load(update)?;
    let text = doc.get_or_insert_text(name).get_string(&doc.transact());
    if !text.is_empty() {
        return Ok(Value::String(text));
    }
    let doc = load(update)?;
    let array = doc.get_or_insert_array(name);
    let txn = doc.transact();
    if array.len(&txn) > 0 {
        return Ok(to_value(&array.to_json(&txn)));
    }
    Ok(Value::String(String::new()))
}

fn load(update: &[u8]) -> Result<Doc, ExportError> {
    let doc = crate::room::doc::new_document();
    let update = Update::decode_v1(update).map_err(ExportError::NotAnUpdate)?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| ExportError::DoesNotApply(e.to_string()))?;
    Ok(doc)
}

fn to_value(any: &yrs::Any) -> Value {
    serde_json::to_value(any).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{ArrayPrelim, Text};

    #[test]
    fn text_maps_and_arrays_come_out_as_json() {
        let doc = Doc::new();
        {
            let text = doc.get_or_insert_text("content");
            let map = doc.get_or_insert_map("meta");
            let list = doc.get_or_insert_array("items");
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "hello");
            map.insert(&mut txn, "title", "notes");
            map.insert(&mut txn, "tags", ArrayPrelim::from(vec!["a", "b"]));
            list.push_back(&mut txn, 1);
            list.push_back(&mut txn, "two");
        }
        let update = doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        let json = doc_to_json(&update).expect("converts");
        assert_eq!(
            json,
            serde_json::json!({
                "content": "hello",
                "meta": { "title": "notes", "tags": ["a", "b"] },
                "items": [1, "two"],
            })
        );
        assert!(doc_to_json(&[0xff, 0xff]).is_err());
    }
}
