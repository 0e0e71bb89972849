//! On GitHub Actions (`GITHUB_ACTIONS=true`) a failing check also prints
//! each entry of its report as a workflow command, so the pull request
//! shows the leak at the line that spawned it. The format is pinned by a
//! snapshot; a child process proves the lines reach libtest's output, once
//! per entry, and only on GitHub Actions.

mod common;

use std::process::Command;

use common::{assert_snapshot, expect_report, redact, replace_numbers, site_line, Parked};

const SOURCE: &str = include_str!("github_annotations.rs");

/// Two entries: a task spawned by a task (a chain), and a named thread.
/// The tasks wait on `pending()`, which no task dump traces, so the
/// annotations read the same in every build.
#[tokio::test]
async fn each_entry_is_one_error_at_its_spawn_site() {
    let outer = leakcheck::spawn(async {
        leakcheck::spawn(std::future::pending::<()>()); // site:inner
        std::future::pending::<()>().await;
    });
    tokio::task::yield_now().await;
    let thread = Parked::start("indexer"); // site:thread
    let report = expect_report().await;
    let annotations = report.github_annotations();

    let lines: Vec<&str> = annotations.lines().collect();
    assert_eq!(lines.len(), 3, "{annotations}");
    for marker in ["inner", "thread"] {
        let line = site_line(SOURCE, marker);
        let at = format!("::error file=tests/github_annotations.rs,line={line},col=");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(&at)).count(),
            1,
            "{annotations}"
        );
    }
    let redacted = replace_numbers(&redact(&annotations), "line=", "line=[line]");
    let redacted = replace_numbers(&redacted, ",col=", ",col=[col]");
    // Pinned once for every build: nothing here has an await trace.
    assert_snapshot("github_annotations", &redacted, true);

    outer.abort();
    let _ = outer.await;
    thread.end();
}

#[leakcheck::leak_check(settle = "100ms")]
#[ignore = "helper: run in a child process by the tests below"]
async fn helper_leaky_test() {
    leakcheck::spawn(std::future::pending::<()>()); // site:helper_task
    let _keep = leakcheck::thread::spawn(std::thread::park); // site:helper_thread
}

/// Runs `helper_leaky_test` in a child process, as CI would (output
/// captured by libtest), and returns its stdout and stderr.
fn run_helper(github_actions: bool) -> (String, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "helper_leaky_test",
        "--exact",
        "--ignored",
        "--test-threads=1",
    ]);
    command.env_remove("GITHUB_ACTIONS");
    if github_actions {
        command.env("GITHUB_ACTIONS", "true");
    }
    let output = command.output().expect("re-running the test binary");
    assert!(!output.status.success(), "the helper leaks");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn on_github_actions_the_failing_test_prints_one_annotation_per_entry() {
    let (stdout, stderr) = run_helper(true);
    assert!(
        stdout.contains("outlived test `helper_leaky_test`"),
        "{stdout}"
    );
    for marker in ["helper_task", "helper_thread"] {
        let line = site_line(SOURCE, marker);
        let at = format!("::error file=tests/github_annotations.rs,line={line},col=");
        let found = stdout.lines().filter(|l| l.starts_with(&at)).count();
        assert_eq!(found, 1, "site:{marker}\n{stdout}\n{stderr}");
    }
    let all = stdout.lines().filter(|l| l.starts_with("::error ")).count();
    assert_eq!(all, 2, "{stdout}");
    assert!(!stderr.contains("::error"), "{stderr}");
}

#[test]
fn elsewhere_the_failing_test_prints_none() {
    let (stdout, stderr) = run_helper(false);
    assert!(
        stdout.contains("outlived test `helper_leaky_test`"),
        "{stdout}"
    );
    assert!(!stdout.contains("::error"), "{stdout}");
    assert!(!stderr.contains("::error"), "{stderr}");
}
