//! Every input the fuzzers ever crashed on (`chorus-protocol/fuzz/regressions/`), and every
//! seed of their corpora, replayed through exactly what the fuzz targets run (their bodies live
//! in `fuzz_targets/shared/room_driver.rs`), so a fixed finding cannot come back unnoticed and
//! the fuzz targets cannot rot without an ordinary test failing.

use std::path::{Path, PathBuf};

#[path = "../../chorus-protocol/fuzz/fuzz_targets/shared/room_driver.rs"]
mod room_driver;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chorus-protocol/fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    files
}

/// Which target found a regression, by its name's prefix (see the fuzz README's table).
fn target_of(name: &str) -> fn(&[u8]) {
    if name.starts_with("room-") {
        room_driver::run_room
    } else if name.starts_with("vta-") || name.starts_with("yrs-") {
        room_driver::run_validate_then_apply
    } else {
        panic!("{name}: no target for this prefix; name it room-, vta- or yrs-")
    }
}

#[test]
fn every_regression_replays_through_its_target() {
    let files = files(&fuzz_dir().join("regressions"));
    assert!(files.len() >= 14, "the regressions are where they were");
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a name")
            .to_owned();
        let data = std::fs::read(&file).expect("readable");
        target_of(&name)(&data);
    }
}

#[test]
fn every_room_corpus_seed_replays() {
    for (dir, target) in [
        ("room", room_driver::run_room as fn(&[u8])),
        ("validate_then_apply", room_driver::run_validate_then_apply),
    ] {
        let seeds = files(&fuzz_dir().join("corpus").join(dir));
        assert!(!seeds.is_empty(), "corpus/{dir} has seeds");
        for seed in seeds {
            target(&std::fs::read(&seed).expect("readable"));
        }
    }
}
