//! Damage inside a Redis update log.

use chorus_store::{RedisLog, UpdateLog};

use crate::helpers::{Editor, doc_name, redis, redis_cleanup};

#[tokio::test]
async fn a_damaged_redis_log_entry_is_skipped_and_a_copy_kept_aside() {
    let conn = redis().await;
    let log = RedisLog::new(conn.clone());
    let doc = doc_name("notes");
    let editor = Editor::new(4);
    let updates = [
        editor.type_text("a"),
        editor.type_text("b"),
        editor.type_text("c"),
        editor.type_text("d"),
    ];
    log.append(&doc, &updates[..2]).await.expect("append");
    let key = log.key_of(&doc);
    let mut manager = conn.manager();
    // Entry 3 arrives with a checksum that does not match (a bad restore, a stray writer)...
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("3-0")
        .arg("u")
        .arg(updates[2].as_ref())
        .arg("c")
        .arg(&[0u8, 0, 0, 0][..])
        .query_async(&mut manager)
        .await
        .expect("XADD");
    let _: i64 = redis::cmd("HSET")
        .arg(key.replace(":log", ":meta"))
        .arg("n")
        .arg(3)
        .query_async(&mut manager)
        .await
        .expect("HSET");
    // ... and a good one follows it.
    assert_eq!(log.append(&doc, &updates[3..]).await.expect("append"), 4);

    let records = log.read(&doc).await.expect("damage is not an error");
    assert_eq!(
        records,
        vec![
            (1, updates[0].clone()),
            (2, updates[1].clone()),
            (4, updates[3].clone())
        ]
    );
    let aside: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{key}.corrupt-*"))
        .query_async(&mut manager)
        .await
        .expect("KEYS");
    assert_eq!(aside.len(), 1, "a copy of the damaged stream is kept");
    let kept: i64 = redis::cmd("XLEN")
        .arg(&aside[0])
        .query_async(&mut manager)
        .await
        .expect("XLEN");
    assert_eq!(kept, 4, "the copy holds the damaged entry too");
    assert_eq!(log.read(&doc).await.expect("read again"), records);
    assert_eq!(
        log.append(&doc, &[editor.type_text("e")])
            .await
            .expect("append"),
        5,
        "numbering goes on past the removed entry"
    );
    redis_cleanup(&conn).await;
}
