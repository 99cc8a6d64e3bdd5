//! The Yjs v1 update validator: no false positives on anything real encoders write (random yrs
//! sessions, and updates written by the npm `yjs` package), summaries that agree with yrs and
//! Yjs, v2 refused, and every hostile class of `docs/hostile-inputs.md`
//! refused with the error that names it.

mod common;

use std::collections::HashSet;

use chorus_protocol::ProtocolError;
use chorus_protocol::lib0::{MAX_SAFE_INTEGER, write_var_string, write_var_uint};
use chorus_protocol::update::{
    DEFAULT_MAX_ANY_DEPTH, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_TYPE_DEPTH, MAX_STRUCT_CLOCK, Section,
    StructId, UpdateError, UpdateLimits, UpdateSummary, validate_update_v1,
};
use proptest::collection::vec;
use proptest::prelude::*;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

fn validate(bytes: &[u8]) -> Result<UpdateSummary, UpdateError> {
    validate_update_v1(bytes, &UpdateLimits::default())
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("fixture hex"))
        .collect()
}

/// Checks an accepted update's summary against what yrs decodes from the same bytes.
fn agrees_with_yrs(bytes: &[u8], summary: &UpdateSummary) -> Result<(), String> {
    let update = Update::decode_v1(bytes).map_err(|e| format!("yrs refused it: {e}"))?;
    let inserted = update.insertions(true);
    let struct_clients: HashSet<u64> = inserted.iter().map(|(c, _)| c.get()).collect();
    let mut clients = struct_clients.clone();
    let mut ranges = 0;
    for (client, client_ranges) in update.delete_set().iter() {
        clients.insert(client.get());
        ranges += client_ranges.len();
    }
    let expect = |what: &str, ours: usize, theirs: usize| {
        if ours == theirs {
            Ok(())
        } else {
            Err(format!("{what}: validator {ours}, yrs {theirs}"))
        }
    };
    expect(
        "struct clients",
        summary.struct_clients,
        struct_clients.len(),
    )?;
    expect("clients", summary.clients, clients.len())?;
    expect("delete ranges", summary.delete_ranges, ranges)?;
    match summary.first_struct {
        Some(StructId { client, clock }) => {
            let lowest = update.state_vector_lower().get(&yrs::ClientID::new(client));
            expect("first struct clock", clock as usize, lowest as usize)?;
        }
        None => expect("structs", summary.structs, 0)?,
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// No false positives: everything yrs writes is accepted, and the summary matches yrs.

fn session_strategy() -> impl Strategy<Value = (usize, u64, Vec<common::Step>)> {
    (
        1..=3usize,
        prop_oneof![0..1000u64, (MAX_SAFE_INTEGER - 10)..=(MAX_SAFE_INTEGER - 3)],
        vec(common::step(), 1..16),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn accepts_every_update_yrs_writes((docs, first_client, steps) in session_strategy(), pick in any::<usize>()) {
        let mut session = common::Session::new(docs, first_client);
        session.run(steps).map_err(TestCaseError::fail)?;

        let mut samples: Vec<(String, Vec<u8>)> = Vec::new();
        for (i, (_, update)) in session.observed().into_iter().enumerate() {
            samples.push((format!("observed #{i}"), update));
        }
        for (i, update) in session.txn_updates.iter().enumerate() {
            samples.push((format!("transaction #{i}"), update.clone()));
        }
        let other = session.docs[pick % session.docs.len()].transact().state_vector();
        for (i, doc) in session.docs.iter().enumerate() {
            let txn = doc.transact();
            samples.push((format!("doc {i} full state"), txn.encode_state_as_update_v1(&StateVector::default())));
            samples.push((format!("doc {i} diff"), txn.encode_state_as_update_v1(&other)));
        }
        let observed: Vec<Vec<u8>> = session.observed().into_iter().map(|(_, u)| u).collect();
        if !observed.is_empty() {
            let merged = yrs::merge_updates_v1(&observed).map_err(|e| TestCaseError::fail(e.to_string()))?;
            samples.push(("merged".into(), merged));
            // A merge of a non-contiguous subset has gaps, which yrs writes as Skip structs.
            let every_other: Vec<&Vec<u8>> = observed.iter().step_by(2).collect();
            let merged = yrs::merge_updates_v1(&every_other).map_err(|e| TestCaseError::fail(e.to_string()))?;
            samples.push(("merged subset".into(), merged));
        }

        for (name, bytes) in &samples {
            let summary = validate(bytes)
                .map_err(|e| TestCaseError::fail(format!("{name} refused: {e}\n{}", to_hex(bytes))))?;
            agrees_with_yrs(bytes, &summary)
                .map_err(|e| TestCaseError::fail(format!("{name}: {e}\n{}", to_hex(bytes))))?;
        }
        for (i, doc) in session.docs.iter().enumerate() {
            let txn = doc.transact();
            // yrs 0.28.1 panics encoding a v2 state that includes pending updates (an unwrap
            // of `merge_updates_v2` that fails with EmptyBlock); v1 is fine.
            if txn.has_missing_updates() {
                continue;
            }
            let v2 = txn.encode_state_as_update_v2(&StateVector::default());
            prop_assert!(validate(&v2).is_err(), "doc {} v2 state accepted: {}", i, to_hex(&v2));
        }
        for (i, v2) in session.updates_v2.iter().enumerate() {
            prop_assert!(validate(v2).is_err(), "v2 update #{} accepted: {}", i, to_hex(v2));
        }
    }

    /// Mutated real updates never panic the validator, and whatever it accepts yrs decodes
    /// too (or refuses only for invalid JSON, which the validator leaves to yrs): the validator
    /// is never more permissive than yrs' parser. (Applying accepted updates is the job of the
    /// `validate_then_apply` fuzz target: structurally valid but inconsistent updates can
    /// still trip yrs' integration, see fuzz/README.md.)
    #[test]
    fn accepted_mutations_decode_in_yrs(
        (docs, first_client, steps) in session_strategy(),
        mutations in vec((any::<usize>(), any::<u8>(), 0..3u8), 1..4),
    ) {
        let mut session = common::Session::new(docs, first_client);
        session.run(steps).map_err(TestCaseError::fail)?;
        let mut bytes = session.docs[0].transact().encode_state_as_update_v1(&StateVector::default());
        for (at, byte, how) in mutations {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match how {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => { bytes.remove(at); }
            }
        }
        if validate(&bytes).is_err() {
            return Ok(());
        }
        match Update::decode_v1(&bytes) {
            Ok(_) | Err(yrs::encoding::read::Error::InvalidJSON(_)) => {}
            Err(e) => return Err(TestCaseError::fail(format!("accepted, yrs refused: {e}\n{}", to_hex(&bytes)))),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_validator(bytes in vec(any::<u8>(), 0..1024)) {
        let _ = validate(&bytes);
    }

    #[test]
    fn every_strict_prefix_of_a_valid_update_is_refused((docs, first_client, steps) in session_strategy()) {
        let mut session = common::Session::new(docs, first_client);
        session.run(steps).map_err(TestCaseError::fail)?;
        let update = session.docs[0].transact().encode_state_as_update_v1(&StateVector::default());
        prop_assert!(validate(&update).is_ok());
        for end in 0..update.len() {
            prop_assert!(validate(&update[..end]).is_err(), "prefix of {} bytes accepted", end);
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Updates written by the npm `yjs` package (tests/fixtures/generate-yjs-updates.mjs).

struct Fixture<'a> {
    name: &'a str,
    version: &'a str,
    accepted: bool,
    counts: Option<(usize, usize, usize)>,
    first: Option<StructId>,
    bytes: Vec<u8>,
}

fn fixtures() -> Vec<Fixture<'static>> {
    include_str!("fixtures/yjs-updates.txt")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 9, "fixture line: {line}");
            let num = |s: &str| s.parse::<u64>().ok();
            let counts = match (num(f[3]), num(f[4]), num(f[5])) {
                (Some(s), Some(c), Some(r)) => Some((s as usize, c as usize, r as usize)),
                _ => None,
            };
            let first = match (num(f[6]), num(f[7])) {
                (Some(client), Some(clock)) => Some(StructId {
                    client,
                    clock: u32::try_from(clock).expect("fixture clock"),
                }),
                _ => None,
            };
            Fixture {
                name: f[0],
                version: f[1],
                accepted: f[2] == "ok",
                counts,
                first,
                bytes: hex(f[8]),
            }
        })
        .collect()
}

#[test]
fn yjs_written_updates_are_accepted_and_counted_like_yjs() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 40, "fixture file looks truncated");
    for f in fixtures.iter().filter(|f| f.version == "v1" && f.accepted) {
        let summary = validate(&f.bytes).unwrap_or_else(|e| panic!("{} refused: {e}", f.name));
        let (structs, clients, ranges) = f.counts.expect("accepted fixtures carry counts");
        assert_eq!(
            (summary.structs, summary.clients, summary.delete_ranges),
            (structs, clients, ranges),
            "{}: (structs, clients, delete ranges) differ from Y.decodeUpdate",
            f.name
        );
        assert_eq!(summary.first_struct, f.first, "{}: first struct", f.name);
        // And yrs takes it: the validator sits in front of yrs, not instead of it.
        common::apply(&Doc::new(), &f.bytes).unwrap_or_else(|e| panic!("{}: yrs: {e}", f.name));
    }
}

#[test]
fn yjs_v2_updates_are_refused_on_the_v1_path() {
    let v2: Vec<_> = fixtures()
        .into_iter()
        .filter(|f| f.version == "v2")
        .collect();
    assert!(v2.len() >= 20);
    for f in v2 {
        assert!(validate(&f.bytes).is_err(), "{} (v2) accepted", f.name);
    }
}

#[test]
fn yjs_xml_hook_is_accepted_with_its_name() {
    let hook = fixtures()
        .into_iter()
        .find(|f| f.name == "xml_hook" && f.version == "v1")
        .expect("xml_hook fixture");
    assert!(hook.accepted);
    let summary = validate(&hook.bytes).expect("an XmlHook is accepted");
    assert_eq!(summary.structs, 1);
    // The vendored yrs reads the hook name, as Yjs (vendor/yrs/CHORUS-PATCHES.md).
    common::apply(&Doc::new(), &hook.bytes).expect("yrs applies it");
    // Without the name, the update ends early.
    let nameless = hex("0101e9f4011347e9f401000500");
    assert!(validate(&nameless).is_err());
}

#[test]
fn strict_prefixes_of_yjs_updates_are_refused() {
    for f in fixtures()
        .iter()
        .filter(|f| f.version == "v1" && f.accepted)
    {
        for end in 0..f.bytes.len() {
            assert!(
                validate(&f.bytes[..end]).is_err(),
                "{} cut at {end}",
                f.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs, one class at a time, built byte by byte.

/// Writes lib0 values into a byte string.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn uint(mut self, value: u64) -> Self {
        write_var_uint(&mut self.0, value);
        self
    }
    fn byte(mut self, byte: u8) -> Self {
        self.0.push(byte);
        self
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn string(mut self, s: &str) -> Self {
        write_var_string(&mut self.0, s);
        self
    }
    /// One client section header: `count` structs of `client` from `clock`.
    fn section(self, count: u64, client: u64, clock: u64) -> Self {
        self.uint(count).uint(client).uint(clock)
    }
    /// An item with content kind `kind` in root type `root` (no origins, no key).
    fn root_item(self, kind: u8, root: &str) -> Self {
        self.byte(kind).uint(1).string(root)
    }
    fn done(self) -> Vec<u8> {
        self.0
    }
}

const STRING: u8 = 4;
const TYPE: u8 = 7;
const ANY: u8 = 8;

/// One update: one client section with a single string item `s` in root "t", no deletes.
fn one_string(client: u64, clock: u64, s: &str) -> Vec<u8> {
    Bytes::default()
        .uint(1)
        .section(1, client, clock)
        .root_item(STRING, "t")
        .string(s)
        .uint(0)
        .done()
}

#[test]
fn clock_wrap_is_refused() {
    // The 19-byte update of P1 (panic, then use-after-free in yrs).
    let p1 = hex("010101ffffffff0f0401047465787402787800");
    assert_eq!(p1.len(), 19);
    assert_eq!(
        validate(&p1),
        Err(UpdateError::ClockOverflow {
            client: 1,
            clock: u32::MAX,
            len: 2
        })
    );
    // A second struct that starts in range but ends past it.
    let two = Bytes::default()
        .uint(1)
        .section(2, 1, u64::from(MAX_STRUCT_CLOCK) - 3)
        .root_item(STRING, "t")
        .string("ab")
        .byte(0)
        .uint(5) // GC of 5
        .uint(0)
        .done();
    assert_eq!(
        validate(&two),
        Err(UpdateError::ClockOverflow {
            client: 1,
            clock: MAX_STRUCT_CLOCK - 1,
            len: 5
        })
    );
    // From 2^31 on, yrs computes offsets with the wrong sign (found by fuzzing): refused even
    // though the clock fits a u32.
    assert_eq!(
        validate(&one_string(1, 1 << 31, "x")),
        Err(UpdateError::ClockOverflow {
            client: 1,
            clock: 1 << 31,
            len: 1
        })
    );
    // A clock that does not fit in 32 bits at all (yrs would wrap it).
    assert_eq!(
        validate(&one_string(1, 1 << 32, "x")),
        Err(UpdateError::IntegerTooLarge { what: "clock" })
    );
}

#[test]
fn client_ids_of_2_pow_53_and_above_are_refused() {
    for client in [1 << 53, (1 << 53) + 1, u64::MAX] {
        assert_eq!(
            validate(&one_string(client, 0, "x")),
            Err(UpdateError::ClientIdTooLarge),
            "client {client}"
        );
    }
    // The largest JavaScript-safe id is fine.
    assert!(validate(&one_string(MAX_SAFE_INTEGER, 0, "x")).is_ok());
    // In an origin …
    let origin = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .byte(0x80 | STRING)
        .uint(1 << 53)
        .uint(0)
        .string("x")
        .uint(0)
        .done();
    assert_eq!(validate(&origin), Err(UpdateError::ClientIdTooLarge));
    // … and in the delete set.
    let ds = Bytes::default()
        .uint(0)
        .uint(1)
        .uint(1 << 53)
        .uint(1)
        .uint(0)
        .uint(1)
        .done();
    assert_eq!(validate(&ds), Err(UpdateError::ClientIdTooLarge));
}

fn nested_any(depth: usize, array: bool) -> Vec<u8> {
    let mut b = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .root_item(ANY, "m")
        .uint(1);
    for _ in 0..depth {
        b = if array {
            b.byte(117).uint(1)
        } else {
            b.byte(118).uint(1).string("k")
        };
    }
    b.byte(126).uint(0).done()
}

#[test]
fn deeply_nested_any_is_refused() {
    // C1: 10 000 levels overflow yrs' recursive decoder on a 2 MiB stack.
    for array in [true, false] {
        assert_eq!(
            validate(&nested_any(10_000, array)),
            Err(UpdateError::AnyTooDeep {
                limit: DEFAULT_MAX_ANY_DEPTH
            })
        );
        assert_eq!(
            validate(&nested_any(DEFAULT_MAX_ANY_DEPTH + 1, array)),
            Err(UpdateError::AnyTooDeep {
                limit: DEFAULT_MAX_ANY_DEPTH
            })
        );
        let at_limit = nested_any(DEFAULT_MAX_ANY_DEPTH, array);
        let summary = validate(&at_limit).expect("nesting at the limit is fine");
        agrees_with_yrs(&at_limit, &summary).expect("yrs agrees");
    }
    // Sub-document options are an Any too.
    let mut doc = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .root_item(9, "m")
        .string("guid");
    for _ in 0..DEFAULT_MAX_ANY_DEPTH + 1 {
        doc = doc.byte(117).uint(1);
    }
    assert_eq!(
        validate(&doc.byte(126).uint(0).done()),
        Err(UpdateError::AnyTooDeep {
            limit: DEFAULT_MAX_ANY_DEPTH
        })
    );
}

#[test]
fn deeply_nested_json_is_refused() {
    let depth = DEFAULT_MAX_ANY_DEPTH + 1;
    let json = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let embed = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .root_item(5, "t")
        .string(&json)
        .uint(0)
        .done();
    assert_eq!(
        validate(&embed),
        Err(UpdateError::JsonTooDeep {
            limit: DEFAULT_MAX_ANY_DEPTH
        })
    );
    let format = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .root_item(6, "t")
        .string("bold")
        .string(&json)
        .uint(0)
        .done();
    assert_eq!(
        validate(&format),
        Err(UpdateError::JsonTooDeep {
            limit: DEFAULT_MAX_ANY_DEPTH
        })
    );
}

/// A chain of `depth` maps, each the value of key "k" in the previous one (C2/C3).
fn nested_maps(depth: u64) -> Vec<u8> {
    let mut b = Bytes::default().uint(1).section(depth, 1, 0);
    for level in 0..depth {
        b = b.byte(0x20 | TYPE);
        b = if level == 0 {
            b.uint(1).string("m")
        } else {
            b.uint(0).uint(1).uint(level - 1)
        };
        b = b.string("k").byte(1); // parent sub, type ref Map
    }
    b.uint(0).done()
}

#[test]
fn deeply_nested_shared_types_are_refused() {
    let limit = DEFAULT_MAX_TYPE_DEPTH;
    assert_eq!(
        validate(&nested_maps(10_000)),
        Err(UpdateError::TypeTooDeep { limit })
    );
    assert_eq!(
        validate(&nested_maps(limit as u64 + 1)),
        Err(UpdateError::TypeTooDeep { limit })
    );
    let at_limit = nested_maps(limit as u64);
    let summary = validate(&at_limit).expect("nesting at the limit is fine");
    assert_eq!(summary.structs, limit);
    agrees_with_yrs(&at_limit, &summary).expect("yrs agrees");
    common::apply(&Doc::new(), &at_limit).expect("yrs applies it");
}

#[test]
fn nesting_through_origins_is_followed() {
    // Level i: a string item "s" in the type of level i − 1 (explicit parent), then the array
    // of level i with that string as left origin, so its parent is only implied.
    let depth = 200u64;
    let mut b = Bytes::default().uint(1).section(2 * depth, 1, 0);
    for level in 0..depth {
        let string_clock = 2 * level;
        b = b.byte(STRING);
        b = if level == 0 {
            b.uint(1).string("a")
        } else {
            b.uint(0).uint(1).uint(string_clock - 1)
        };
        b = b.string("s");
        b = b.byte(0x80 | TYPE).uint(1).uint(string_clock).byte(0); // Array after "s"
    }
    assert_eq!(
        validate(&b.uint(0).done()),
        Err(UpdateError::TypeTooDeep {
            limit: DEFAULT_MAX_TYPE_DEPTH
        })
    );
}

#[test]
fn counts_beyond_the_input_are_refused() {
    let too_large = |e: &UpdateError| matches!(e, UpdateError::CountTooLarge { .. });
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "sections",
            Bytes::default().uint(u64::from(u32::MAX)).uint(0).done(),
        ),
        (
            "structs",
            Bytes::default()
                .uint(1)
                .section(1 << 28, 1, 0)
                .uint(0)
                .done(),
        ),
        (
            "delete-set clients",
            Bytes::default().uint(0).uint(1 << 28).done(),
        ),
        (
            "delete ranges",
            Bytes::default()
                .uint(0)
                .uint(1)
                .uint(1)
                .uint(1 << 28)
                .done(),
        ),
        (
            "Any values",
            Bytes::default()
                .uint(1)
                .section(1, 1, 0)
                .root_item(ANY, "m")
                .uint(1 << 28)
                .uint(0)
                .done(),
        ),
        (
            // upd1_any_map_len_2p26: a map announcing 2^26 entries.
            "Any map",
            Bytes::default()
                .uint(1)
                .section(1, 1, 0)
                .root_item(ANY, "m")
                .uint(1)
                .byte(118)
                .uint(1 << 26)
                .uint(0)
                .done(),
        ),
    ];
    for (name, bytes) in cases {
        let err = validate(&bytes).expect_err(name);
        assert!(too_large(&err), "{name}: {err:?}");
    }
    // Counts that do not even fit yrs' u32.
    assert_eq!(
        validate(&Bytes::default().uint(1 << 40).uint(0).done()),
        Err(UpdateError::IntegerTooLarge {
            what: "client sections"
        })
    );
    // Strings and buffers longer than the input.
    let long_string = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .root_item(STRING, "t")
        .uint(u64::from(u32::MAX))
        .raw(b"abc")
        .done();
    assert!(matches!(
        validate(&long_string),
        Err(UpdateError::Malformed(ProtocolError::UnexpectedEnd { .. }))
    ));
}

#[test]
fn delete_set_overflow_and_empty_ranges_are_refused() {
    let overflow = Bytes::default()
        .uint(0)
        .uint(1)
        .uint(1)
        .uint(1)
        .uint(u64::from(u32::MAX))
        .uint(2)
        .done();
    assert_eq!(
        validate(&overflow),
        Err(UpdateError::DeleteRangeOverflow {
            client: 1,
            clock: u32::MAX,
            len: 2
        })
    );
    let empty = Bytes::default()
        .uint(0)
        .uint(1)
        .uint(1)
        .uint(1)
        .uint(5)
        .uint(0)
        .done();
    assert_eq!(
        validate(&empty),
        Err(UpdateError::EmptyDeleteRange {
            client: 1,
            clock: 5
        })
    );
    // The policy case "one 10-byte delete set removes all of client 1" is protocol-legal.
    let delete_all = Bytes::default()
        .uint(0)
        .uint(1)
        .uint(1)
        .uint(1)
        .uint(0)
        .uint(u64::from(u32::MAX))
        .done();
    assert!(validate(&delete_all).is_ok());
}

#[test]
fn too_many_distinct_clients_are_refused() {
    // H3: 100 000 fake clients, here as delete-set entries (2–4 bytes each) …
    let mut ds = Bytes::default().uint(0).uint(100_000);
    for client in 0..100_000u64 {
        ds = ds.uint(client + 1).uint(0);
    }
    let limit = DEFAULT_MAX_CLIENTS;
    assert_eq!(
        validate(&ds.done()),
        Err(UpdateError::TooManyClients { limit })
    );
    // … and as struct sections, each with one GC.
    let mut structs = Bytes::default().uint(100_000);
    for client in 0..100_000u64 {
        structs = structs.section(1, client + 1, 0).byte(0).uint(1);
    }
    let structs = structs.uint(0).done();
    assert_eq!(
        validate(&structs),
        Err(UpdateError::TooManyClients { limit })
    );
    assert!(
        validate_update_v1(
            &structs,
            &UpdateLimits {
                max_clients: 100_000,
                ..UpdateLimits::default()
            }
        )
        .is_ok()
    );
    // Exactly at the limit is fine.
    let tight = UpdateLimits {
        max_clients: 3,
        ..UpdateLimits::default()
    };
    let three = Bytes::default()
        .uint(2)
        .section(1, 1, 0)
        .byte(0)
        .uint(1)
        .section(1, 2, 0)
        .byte(0)
        .uint(1)
        .uint(2)
        .uint(2)
        .uint(0)
        .uint(3)
        .uint(0)
        .done();
    let summary = validate_update_v1(&three, &tight).expect("three clients");
    assert_eq!((summary.clients, summary.struct_clients), (3, 2));
    assert!(
        validate_update_v1(
            &three,
            &UpdateLimits {
                max_clients: 2,
                ..tight
            }
        )
        .is_err_and(|e| e.is_limit())
    );
}

#[test]
fn duplicate_clients_are_refused() {
    let structs = Bytes::default()
        .uint(2)
        .section(1, 7, 0)
        .byte(0)
        .uint(1)
        .section(1, 7, 1)
        .byte(0)
        .uint(1)
        .uint(0)
        .done();
    assert_eq!(
        validate(&structs),
        Err(UpdateError::DuplicateClient {
            client: 7,
            section: Section::Structs
        })
    );
    let ds = Bytes::default()
        .uint(0)
        .uint(2)
        .uint(7)
        .uint(0)
        .uint(7)
        .uint(0)
        .done();
    assert_eq!(
        validate(&ds),
        Err(UpdateError::DuplicateClient {
            client: 7,
            section: Section::DeleteSet
        })
    );
}

#[test]
fn empty_structs_and_sections_are_refused() {
    let empty = |kind: u8, content: Bytes| {
        let mut b = Bytes::default().uint(1).section(1, 3, 4);
        b = if kind == 0 {
            b.byte(0)
        } else {
            b.root_item(kind, "t")
        };
        validate(&b.raw(&content.done()).uint(0).done())
    };
    let expected = Err(UpdateError::EmptyStruct {
        client: 3,
        clock: 4,
    });
    assert_eq!(empty(0, Bytes::default().uint(0)), expected, "GC");
    assert_eq!(empty(1, Bytes::default().uint(0)), expected, "Deleted");
    assert_eq!(
        empty(STRING, Bytes::default().string("")),
        expected,
        "String"
    );
    assert_eq!(empty(ANY, Bytes::default().uint(0)), expected, "Any");
    let skip = Bytes::default()
        .uint(1)
        .section(1, 3, 4)
        .byte(10)
        .uint(0)
        .uint(0)
        .done();
    assert_eq!(validate(&skip), expected, "Skip");
    let section = Bytes::default()
        .uint(1)
        .section(0, 3, 4)
        .raw(
            &Bytes::default()
                .uint(1)
                .uint(3)
                .uint(1)
                .uint(0)
                .uint(1)
                .done(),
        )
        .done();
    assert_eq!(
        validate(&section),
        Err(UpdateError::EmptyClientSection { client: 3 })
    );
}

#[test]
fn content_yjs_and_yrs_read_differently_is_refused() {
    let with_type_ref = |type_ref: u8| {
        Bytes::default()
            .uint(1)
            .section(1, 1, 0)
            .root_item(TYPE, "x")
            .byte(type_ref)
            .string("name")
            .uint(0)
            .done()
    };
    for type_ref in [7, 8, 9, 15, 16] {
        assert_eq!(
            validate(&with_type_ref(type_ref)),
            Err(UpdateError::UnsupportedTypeRef(type_ref))
        );
    }
    // XmlElement and XmlHook carry a name; the other accepted refs carry nothing.
    assert!(validate(&with_type_ref(3)).is_ok());
    assert!(validate(&with_type_ref(5)).is_ok());
    let json = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .root_item(2, "a")
        .uint(1)
        .string("{}")
        .uint(0)
        .done();
    assert!(matches!(
        validate(&json),
        Err(UpdateError::UnsupportedContent { kind: 2, .. })
    ));
}

#[test]
fn unknown_markers_are_refused() {
    let item = |info: u8| {
        Bytes::default()
            .uint(1)
            .section(1, 1, 0)
            .byte(info)
            .uint(1)
            .string("t")
            .string("x")
            .uint(0)
            .done()
    };
    // Kinds no encoder writes, and GC/Skip with item flags (Yjs masks them, yrs does not).
    for info in [11, 0x1f, 0x10 | STRING, 0x80, 0x8a, 0x20] {
        assert_eq!(
            validate(&item(info)),
            Err(UpdateError::UnknownStructKind { info }),
            "info {info:#x}"
        );
    }
    let parent = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .byte(STRING)
        .uint(2)
        .string("x")
        .uint(0)
        .done();
    assert_eq!(validate(&parent), Err(UpdateError::InvalidParentInfo(2)));
    let any_tag = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .root_item(ANY, "m")
        .uint(1)
        .byte(0x10)
        .uint(0)
        .done();
    assert_eq!(validate(&any_tag), Err(UpdateError::UnknownAnyTag(0x10)));
    // P5: an 11-byte signed varint in an Any integer.
    let overlong = Bytes::default()
        .uint(1)
        .section(1, 1, 0)
        .root_item(ANY, "m")
        .uint(1)
        .byte(125)
        .raw(&[0xff; 10])
        .byte(0x01)
        .uint(0)
        .done();
    assert_eq!(
        validate(&overlong),
        Err(UpdateError::IntegerTooLarge {
            what: "Any integer"
        })
    );
}

#[test]
fn invalid_utf8_and_trailing_bytes_are_refused() {
    let mut bad = one_string(1, 0, "ab");
    let at = bad.len() - 3;
    bad[at] = 0xff;
    assert_eq!(
        validate(&bad),
        Err(UpdateError::Malformed(ProtocolError::InvalidUtf8))
    );
    let mut trailing = one_string(1, 0, "ab");
    trailing.push(0);
    assert_eq!(
        validate(&trailing),
        Err(UpdateError::Malformed(ProtocolError::TrailingBytes(1)))
    );
}

#[test]
fn v2_shaped_inputs_are_refused() {
    // yrs' own empty v2 update, and run-length "bombs" in the shape of H1/H2: a v2 header
    // (feature byte, nine column buffers) whose rest announces 2^28 structs.
    assert!(validate(Update::EMPTY_V2).is_err());
    let mut bomb = vec![0u8];
    for column in [&[][..], &[1], &[], &[], &[0, 0], &[], &[], &[], &[1, 0]] {
        write_var_uint(&mut bomb, column.len() as u64);
        bomb.extend_from_slice(column);
    }
    bomb.extend(
        Bytes::default()
            .uint(1)
            .uint(1 << 28)
            .uint(1)
            .uint(0)
            .uint(0)
            .done(),
    );
    assert!(validate(&bomb).is_err());
    // Every yrs v2 encoding of a non-trivial document.
    let mut session_steps = Vec::new();
    for i in 0..10u32 {
        session_steps.push(common::Step::Transact {
            doc: 0,
            edits: vec![common::Edit::TextInsert {
                at: i,
                text: format!("chunk {i} ✓"),
                attrs: None,
            }],
        });
    }
    let mut session = common::Session::new(1, 42);
    session.run(session_steps).expect("edits");
    for v2 in &session.updates_v2 {
        assert!(validate(v2).is_err(), "{}", to_hex(v2));
    }
}

#[test]
fn limits_are_told_apart_from_malformed_input() {
    assert!(
        validate(&nested_any(DEFAULT_MAX_ANY_DEPTH + 1, true))
            .expect_err("too deep")
            .is_limit()
    );
    assert!(
        !validate(&hex("010101ffffffff0f0401047465787402787800"))
            .expect_err("wraps")
            .is_limit()
    );
}
