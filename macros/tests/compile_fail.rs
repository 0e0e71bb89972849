//! Bad `#[leak_check]` arguments are compile errors that point at the
//! offending token and say what is accepted. Each case's expected error is
//! pinned in `tests/ui/<case>.stderr`.

#[test]
fn bad_uses_of_leak_check_are_compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
