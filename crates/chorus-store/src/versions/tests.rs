use std::time::Duration;

use bytes::Bytes;

use super::*;

fn meta(id: &str, created_ms: u64) -> VersionMeta {
    VersionMeta {
        id: VersionId::parse(id).expect("id"),
        doc: "notes".into(),
        created_ms,
        kind: VersionKind::Auto,
        label: None,
        restored_from: None,
        authors: vec!["ada".into()],
        state_bytes: 2,
    }
}

#[test]
fn ids_admit_only_safe_characters() {
    assert!(VersionId::parse("0001700000000-0a1b2c3d").is_ok());
    for bad in ["", "../x", "a/b", "a.b", &"x".repeat(41)] {
        assert_eq!(VersionId::parse(bad), Err(BadVersionId), "{bad:?}");
    }
    let id = VersionId::new(1_700_000_000_000);
    assert!(VersionId::parse(id.as_str()).is_ok());
    assert!(VersionId::new(1) < VersionId::new(2));
}

#[test]
fn parses_retention() {
    assert_eq!("none".parse(), Ok(Retention::default()));
    let both: Retention = "50,30d".parse().expect("both");
    assert_eq!(both.max_count, Some(50));
    assert_eq!(both.max_age, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!("30d, 50".parse::<Retention>(), Ok(both));
    assert_eq!(both.to_string(), "50,30days");
    for bad in ["0", "1,2", "soon", "0s"] {
        assert!(bad.parse::<Retention>().is_err(), "{bad}");
    }
}

#[test]
fn retention_keeps_the_newest_and_drops_by_count_and_age() {
    let versions: Vec<VersionMeta> = (0..5).map(|i| meta(&format!("v{i}"), i * 1000)).collect();
    let by_count = Retention {
        max_count: Some(2),
        max_age: None,
    };
    let ids = |dropped: Vec<&VersionMeta>| -> Vec<String> {
        dropped.iter().map(|v| v.id.to_string()).collect()
    };
    assert_eq!(ids(by_count.expired(&versions, 10_000)), ["v0", "v1", "v2"]);
    let by_age = Retention {
        max_count: None,
        max_age: Some(Duration::from_millis(2500)),
    };
    assert_eq!(ids(by_age.expired(&versions, 4000)), ["v0", "v1"]);
    // Everything is old, but the newest stays.
    assert_eq!(
        ids(by_age.expired(&versions, 1_000_000)),
        ["v0", "v1", "v2", "v3"]
    );
}

#[test]
fn a_version_survives_its_format_and_damage_is_caught() {
    let version = Version {
        meta: meta("v1", 5),
        state: Bytes::from_static(b"\x00\x00"),
        state_vector: Bytes::from_static(b"\x00"),
    };
    let bytes = encode_version(&version);
    assert_eq!(decode_version(&bytes, "x").expect("decodes"), version);
    let mut damaged = bytes.clone();
    damaged[12] ^= 1;
    assert!(matches!(
        decode_version(&damaged, "x"),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(decode_version(&bytes[..bytes.len() - 1], "x").is_err());
}

#[test]
fn activity_adds_up_per_minute_and_identity() {
    let r = |minute, who: &str, updates, bytes| ActivityRecord {
        minute,
        identity: who.into(),
        updates,
        bytes,
    };
    let merged = merge_activity([r(2, "b", 1, 10), r(1, "a", 1, 5), r(2, "b", 2, 20)]);
    assert_eq!(merged, [r(1, "a", 1, 5), r(2, "b", 3, 30)]);
}
