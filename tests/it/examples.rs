//! Every example of `examples/*.map` passes `coupler check` (exit 0), run from the repository
//! root as the documentation shows it: each names its catalogs as `../schemas/...`.

use crate::support::common::repo;
use crate::support::coupler::coupler;

/// The `*.map` files directly in `examples/`, sorted.
fn examples() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .expect("examples folder")
        .map(|e| e.expect("examples entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "map"))
        .map(|p| format!("examples/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_passes_check() {
    let files = examples();
    assert!(files.len() >= 5, "examples/*.map: {files:?}");
    let failed: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let out = coupler(["check", file]).current_dir(repo()).output();
            (out.status.code() != Some(0)).then(|| {
                format!(
                    "{file}: {:?}\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
