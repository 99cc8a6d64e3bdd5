//! What changed between two versions, as data a UI renders (the shape is in the crate docs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::HistoryError;
use crate::model::{self, Kind, List, MAX_DEPTH, Node, Shared};
use crate::plan::{self, Chunk, KeyStep, ListStep, TextStep};

/// What changed from one document state to another: one entry per root whose content differs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocDiff {
    /// The changed roots by name (sorted); unchanged roots are left out.
    pub roots: BTreeMap<String, Change>,
}

/// How one value (a root, a map entry, an attribute, an element) changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// It is new: `value` is its content, in the JSON of [`crate::content_json`].
    Added {
        /// The new content.
        value: Json,
    },
    /// It is gone: `value` was its content.
    Removed {
        /// The old content.
        value: Json,
    },
    /// It was replaced whole (a value changed, or a shared type became another kind).
    Replaced {
        /// The old content.
        before: Json,
        /// The new content.
        after: Json,
    },
    /// A shared type of one kind was edited in place.
    Edited(Edits),
}

/// The edits inside one shared type. Empty lists are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Edits {
    /// Its kind, as in [`crate::content_json`] (`text`, `map`, `array`, `xml_fragment`,
    /// `xml_element`, `xml_text`, `xml_hook`).
    pub kind: String,
    /// The tag, for an XML element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Text edits, in document order (texts and XML texts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<TextEdit>,
    /// Element edits, in document order (arrays and XML children).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<ElementEdit>,
    /// Changed keys (map entries, XML attributes), sorted by key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyEdit>,
}

/// One text edit. Positions count UTF-16 code units (JavaScript string indexes, Yjs text
/// positions); `pos_a` is where the edit is in the old text, `pos_b` where it is in the new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TextEdit {
    /// Inserted text (or an embed), with its formatting.
    Insert {
        /// Position in the old text where it was inserted.
        pos_a: u32,
        /// Position in the new text where it starts.
        pos_b: u32,
        /// What was inserted.
        #[serde(flatten)]
        content: TextContent,
    },
    /// Deleted text (or an embed), with the formatting it had.
    Delete {
        /// Position in the old text where it started.
        pos_a: u32,
        /// Position in the new text where it was.
        pos_b: u32,
        /// What was deleted.
        #[serde(flatten)]
        content: TextContent,
    },
    /// Text kept but formatted differently.
    Format {
        /// Position in the old text.
        pos_a: u32,
        /// Position in the new text.
        pos_b: u32,
        /// How many UTF-16 code units.
        len: u32,
        /// The attributes that changed, with their new value; `null` where one was removed.
        attributes: BTreeMap<String, Json>,
    },
}

/// A piece of text or an embed, with its formatting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextContent {
    /// The characters, for text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The embed (in the JSON of [`crate::content_json`]), for an embed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed: Option<Json>,
    /// Its length in UTF-16 code units.
    pub len: u32,
    /// Its formatting, when it has some.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Json>,
}

/// One element edit; `index_a` is a position among the old elements, `index_b` among the new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ElementEdit {
    /// Elements inserted at `index_b` (old position `index_a`).
    Insert {
        /// Position among the old elements.
        index_a: usize,
        /// Position of the first one among the new elements.
        index_b: usize,
        /// Their content.
        values: Vec<Json>,
    },
    /// Elements deleted from `index_a` (they were at `index_b` in the new elements).
    Delete {
        /// Position of the first one among the old elements.
        index_a: usize,
        /// Where they were among the new elements.
        index_b: usize,
        /// Their content.
        values: Vec<Json>,
    },
    /// One element edited in place (same kind and tag).
    Edit {
        /// Its position among the old elements.
        index_a: usize,
        /// Its position among the new elements.
        index_b: usize,
        /// What changed inside it.
        edits: Edits,
    },
}

/// One changed key of a map or of an XML node's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyEdit {
    /// The key.
    pub key: String,
    /// How its value changed.
    pub change: Change,
}

/// The diff between the roots of two documents.
pub(crate) fn diff_roots(
    a: &BTreeMap<String, Shared>,
    b: &BTreeMap<String, Shared>,
) -> Result<DocDiff, HistoryError> {
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut roots = BTreeMap::new();
    for name in names {
        let change = match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(x), Some(y)) if x.kind == y.kind => Change::Edited(edits(x, y, 0)?),
            (Some(x), Some(y)) => Change::Replaced {
                before: model::shared_json(x),
                after: model::shared_json(y),
            },
            (Some(x), None) => Change::Removed {
                value: model::shared_json(x),
            },
            (None, Some(y)) => Change::Added {
                value: model::shared_json(y),
            },
            (None, None) => continue,
        };
        roots.insert(name.clone(), change);
    }
    Ok(DocDiff { roots })
}

/// The edits that turn `a` into `b`, two shared types of one kind.
fn edits(a: &Shared, b: &Shared, depth: usize) -> Result<Edits, HistoryError> {
    if depth >= MAX_DEPTH {
        return Err(HistoryError::TooDeep(MAX_DEPTH));
    }
    let mut out = Edits {
        kind: b.kind.name().to_string(),
        tag: match &b.kind {
            Kind::XmlElement(tag) => Some(tag.clone()),
            _ => None,
        },
        ..Edits::default()
    };
    match (&a.list, &b.list) {
        (List::Text(x), List::Text(y)) => out.text = text_edits(x, y),
        (List::Items(x), List::Items(y)) => out.elements = element_edits(x, y, depth)?,
        // Different sorts of list part (only roots inferred differently): all out, all in.
        (List::Text(x), List::Items(y)) => {
            out.text = text_edits(x, &[]);
            out.elements = element_edits(&[], y, depth)?;
        }
        (List::Items(x), List::Text(y)) => {
            out.elements = element_edits(x, &[], depth)?;
            out.text = text_edits(&[], y);
        }
    }
    for step in plan::map_plan(&a.map, &b.map) {
        let (key, change) = match step {
            KeyStep::Remove { key, old } => (
                key,
                Change::Removed {
                    value: model::node_json(old),
                },
            ),
            KeyStep::Add { key, new } => (
                key,
                Change::Added {
                    value: model::node_json(new),
                },
            ),
            KeyStep::Replace { key, old, new } => (
                key,
                Change::Replaced {
                    before: model::node_json(old),
                    after: model::node_json(new),
                },
            ),
            KeyStep::Edit { key, from, to } => (key, Change::Edited(edits(from, to, depth + 1)?)),
        };
        out.keys.push(KeyEdit {
            key: key.to_string(),
            change,
        });
    }
    Ok(out)
}

fn text_edits(a: &[crate::model::Run], b: &[crate::model::Run]) -> Vec<TextEdit> {
    let (mut pos_a, mut pos_b) = (0u32, 0u32);
    let mut out = Vec::new();
    for step in plan::text_plan(a, b) {
        match step {
            TextStep::Retain { len } => {
                pos_a = pos_a.saturating_add(len);
                pos_b = pos_b.saturating_add(len);
            }
            TextStep::Format { len, changes } => {
                out.push(TextEdit::Format {
                    pos_a,
                    pos_b,
                    len,
                    attributes: changes
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_ref().map_or(Json::Null, model::any_json)))
                        .collect(),
                });
                pos_a = pos_a.saturating_add(len);
                pos_b = pos_b.saturating_add(len);
            }
            TextStep::Delete { chunk, format } => {
                let content = text_content(&chunk, format);
                let len = content.len;
                out.push(TextEdit::Delete {
                    pos_a,
                    pos_b,
                    content,
                });
                pos_a = pos_a.saturating_add(len);
            }
            TextStep::Insert { chunk, format } => {
                let content = text_content(&chunk, format);
                let len = content.len;
                out.push(TextEdit::Insert {
                    pos_a,
                    pos_b,
                    content,
                });
                pos_b = pos_b.saturating_add(len);
            }
        }
    }
    out
}

fn text_content(chunk: &Chunk<'_>, format: &crate::model::Format) -> TextContent {
    let attributes = format
        .iter()
        .map(|(k, v)| (k.clone(), model::any_json(v)))
        .collect();
    match chunk {
        Chunk::Str(s) => TextContent {
            text: Some(s.clone()),
            embed: None,
            len: chunk.len16(),
            attributes,
        },
        Chunk::Embed(node) => TextContent {
            text: None,
            embed: Some(model::node_json(node)),
            len: 1,
            attributes,
        },
    }
}

fn element_edits(a: &[Node], b: &[Node], depth: usize) -> Result<Vec<ElementEdit>, HistoryError> {
    let (mut index_a, mut index_b) = (0usize, 0usize);
    let mut out = Vec::new();
    for step in plan::list_plan(a, b) {
        match step {
            ListStep::Retain { len } => {
                index_a += len;
                index_b += len;
            }
            ListStep::Delete { nodes, .. } => {
                out.push(ElementEdit::Delete {
                    index_a,
                    index_b,
                    values: nodes.iter().map(model::node_json).collect(),
                });
                index_a += nodes.len();
            }
            ListStep::Insert { nodes, .. } => {
                out.push(ElementEdit::Insert {
                    index_a,
                    index_b,
                    values: nodes.iter().map(model::node_json).collect(),
                });
                index_b += nodes.len();
            }
            ListStep::Edit { from, to, .. } => {
                out.push(ElementEdit::Edit {
                    index_a,
                    index_b,
                    edits: edits(from, to, depth + 1)?,
                });
                index_a += 1;
                index_b += 1;
            }
        }
    }
    Ok(out)
}
