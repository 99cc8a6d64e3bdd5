//! What a restore, a diff and a content rendering cost on larger documents (wall time, median
//! of 5 runs, and the size of the restore update).
//!
//! `cargo run --release -p chorus-history --example restore_cost`

use std::time::{Duration, Instant};

use chorus_history::{content_json, diff, restore_update};
use yrs::types::Attrs;
use yrs::{
    Any, Doc, GetString, OffsetKind, Options, ReadTxn, StateVector, Text, Transact,
    XmlElementPrelim, XmlFragment, XmlTextPrelim,
};

fn doc() -> Doc {
    Doc::with_options(Options {
        client_id: yrs::ClientID::new(1),
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

fn state(d: &Doc) -> Vec<u8> {
    d.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn median(mut f: impl FnMut()) -> Duration {
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    runs.sort();
    runs[2]
}

fn report(name: &str, current: &[u8], version: &[u8]) {
    let update = restore_update(current, version, 99).expect("restore");
    let restore = median(|| {
        restore_update(current, version, 99).expect("restore");
    });
    let d = median(|| {
        diff(version, current).expect("diff");
    });
    let c = median(|| {
        content_json(current).expect("content");
    });
    println!(
        "{name:<44} state {:>8} B  restore {:>9.2?} ({:>7} B update)  diff {:>9.2?}  content_json {:>9.2?}",
        current.len(),
        restore,
        update.len(),
        d,
        c
    );
}

/// A deterministic pseudo-random sequence (xorshift), so every run edits the same places.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n.max(1))) as u32
    }
}

fn main() {
    let words = ["lorem ", "ipsum ", "dolor ", "sit ", "amet ", "😀 ", "é "];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // A 100 000-character text, then 50 scattered edits and 20 formatting changes.
    let d = doc();
    let t = d.get_or_insert_text("content");
    {
        let mut txn = d.transact_mut();
        let mut s = String::new();
        while s.encode_utf16().count() < 100_000 {
            s.push_str(words[rng.below(words.len() as u32) as usize]);
        }
        t.insert(&mut txn, 0, &s);
    }
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        for i in 0..50 {
            let len = t.len(&txn);
            // Edit at ASCII positions only: a word boundary is found by scanning for a space.
            let s = t.get_string(&txn);
            let at = s[..]
                .char_indices()
                .map(|(i, _)| i)
                .nth(rng.below(s.chars().count() as u32) as usize)
                .unwrap_or(0);
            let at16 = s[..at].encode_utf16().count() as u32;
            if i % 2 == 0 {
                t.insert(&mut txn, at16, "EDIT ");
            } else if at16 + 3 < len && s[at..].chars().take(3).all(|c| c.is_ascii()) {
                t.remove_range(&mut txn, at16, 3);
            }
        }
        for _ in 0..20 {
            let len = t.len(&txn);
            let s = t.get_string(&txn);
            let at = rng.below(len.saturating_sub(20));
            if s.encode_utf16()
                .skip(at as usize)
                .take(10)
                .all(|u| u < 0x80)
            {
                t.format(
                    &mut txn,
                    at,
                    10,
                    Attrs::from([("bold".into(), Any::from(true))]),
                );
            }
        }
    }
    report(
        "text 100k chars, 50 edits + 20 formats",
        &state(&d),
        &version,
    );

    // A ProseMirror document of 2 000 paragraphs, then 20 edited, 10 deleted, 10 inserted.
    let d = doc();
    let frag = d.get_or_insert_xml_fragment("prosemirror");
    {
        let mut txn = d.transact_mut();
        for i in 0..2000 {
            let p = frag.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
            p.push_back(
                &mut txn,
                XmlTextPrelim::new(format!(
                    "Paragraph {i}: lorem ipsum dolor sit amet, consectetur."
                )),
            );
        }
    }
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        for _ in 0..20 {
            let n = frag.len(&txn);
            if let Some(p) = frag
                .get(&txn, rng.below(n))
                .and_then(|x| x.into_xml_element())
                && let Some(x) = p.get(&txn, 0).and_then(|x| x.into_xml_text())
            {
                x.insert(&mut txn, 0, "edited ");
            }
        }
        for _ in 0..10 {
            let n = frag.len(&txn);
            frag.remove_range(&mut txn, rng.below(n), 1);
        }
        for _ in 0..10 {
            let n = frag.len(&txn);
            let p = frag.insert(&mut txn, rng.below(n), XmlElementPrelim::empty("paragraph"));
            p.push_back(&mut txn, XmlTextPrelim::new("a new paragraph"));
        }
    }
    report(
        "prosemirror 2000 paragraphs, 40 changes",
        &state(&d),
        &version,
    );

    // Worst case: 20 000 characters replaced by 20 000 others (past the alignment bound).
    let d = doc();
    let t = d.get_or_insert_text("content");
    {
        let mut txn = d.transact_mut();
        let s: String = (0..20_000)
            .map(|i| if i % 2 == 0 { 'a' } else { 'b' })
            .collect();
        t.insert(&mut txn, 0, &s);
    }
    let version = state(&d);
    {
        let mut txn = d.transact_mut();
        t.remove_range(&mut txn, 0, 20_000);
        let s: String = (0..20_000)
            .map(|i| if i % 3 == 0 { 'a' } else { 'c' })
            .collect();
        t.insert(&mut txn, 0, &s);
    }
    report("text 20k chars rewritten (bound hit)", &state(&d), &version);
}
