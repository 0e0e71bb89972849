//! The whole-binary check: `verify_test_main` in `harness = false` targets.

use std::process::ExitCode;

/// The function form in this process: a failed run's code passes through
/// unchecked, a passing run that leaked gets 101, a clean one keeps its code.
#[test]
fn verify_test_main_turns_a_leaky_pass_into_101_and_keeps_other_codes() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let listener = leakcheck::thread::spawn(move || rx.recv());

    assert_eq!(leakcheck::verify_test_main(|| 3), 3);
    assert_eq!(
        leakcheck::verify_test_main(|| ExitCode::FAILURE),
        ExitCode::FAILURE
    );
    assert_eq!(leakcheck::verify_test_main(|| 0), 101);
    assert_eq!(
        leakcheck::verify_test_main(|| ExitCode::SUCCESS),
        ExitCode::from(101)
    );

    drop(tx);
    listener.join().unwrap().unwrap_err();
    assert_eq!(leakcheck::verify_test_main(|| 0), 0);
    assert_eq!(
        leakcheck::verify_test_main(|| ExitCode::SUCCESS),
        ExitCode::SUCCESS
    );
}
