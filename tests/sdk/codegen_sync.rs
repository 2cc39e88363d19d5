//! build.rs and `cargo xtask codegen` share one generation function; this
//! proves their outputs are byte-identical: what the crate compiles (OUT_DIR)
//! is what reviewers read in `generated/`.

use std::collections::BTreeSet;

/// Every file the generation writes.
const GENERATED: [&str; 4] = ["client.rs", "operations.rs", "enums.rs", "httpmock.rs"];

macro_rules! same_as_checked_in {
    ($($name:literal),*) => {
        $(
            let built = include_str!(concat!(env!("OUT_DIR"), "/", $name));
            let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/generated/", $name))
                .expect(concat!("generated/", $name, " exists"));
            assert!(
                built == checked_in,
                "generated/{} differs from what build.rs produced; run `cargo xtask codegen`",
                $name
            );
        )*
    };
}

#[test]
fn build_rs_output_is_byte_identical_to_generated() {
    same_as_checked_in!("client.rs", "operations.rs", "enums.rs", "httpmock.rs");
}

/// The `.rs` files directly in `dir`, by name.
fn rust_files(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir} is readable: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .collect()
}

#[test]
fn generated_holds_exactly_the_files_build_rs_writes() {
    let expected: BTreeSet<String> = GENERATED.iter().map(|s| (*s).to_owned()).collect();
    let checked_in = rust_files(concat!(env!("CARGO_MANIFEST_DIR"), "/generated"));
    assert_eq!(
        checked_in, expected,
        "generated/ holds a file build.rs does not write (stale), or lacks one; run `cargo xtask codegen`"
    );
    let built = rust_files(env!("OUT_DIR"));
    assert!(
        built.is_superset(&expected),
        "build.rs did not write every generated file: {built:?}"
    );
}
