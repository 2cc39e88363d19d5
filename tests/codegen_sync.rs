//! build.rs and `cargo xtask codegen` share one generation function; this
//! proves their outputs are byte-identical: what the crate compiles (OUT_DIR)
//! is what reviewers read in `generated/`.

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
