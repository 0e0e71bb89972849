//! Races between a check and the tasks it looks at: a task that ends while
//! its report is being built is no leak, and tasks that another test
//! registers while this check runs never show up in it.
//!
//! The ignore predicate runs while the check builds its list of survivors,
//! so these tests use it as a hook to act at exactly that moment.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Parked;
use leakcheck::Options;

/// Ends `victim` from inside the check, when the check asks about it, if
/// `end_it`; else it outlives the check.
fn check_that_ends(victim: &str, end_it: bool) -> Result<(), leakcheck::Report> {
    let parked = Parked::start(victim);
    let victim_name = victim.to_owned();
    Options::new()
        .settle(Duration::ZERO)
        .ignore(move |leak| {
            if end_it && leak.name() == Some(victim_name.as_str()) {
                parked.end();
            }
            false
        })
        .find()
}

#[test]
fn a_task_that_ends_while_its_report_is_built_is_not_reported() {
    let stays = Parked::start("stays");
    let report = check_that_ends("ends-during-check", true).unwrap_err();
    let names: Vec<_> = report.leaks().iter().map(|l| l.name()).collect();
    assert_eq!(names, [Some("stays")], "{report}");
    stays.end();
    Options::new().verify_none();
}

#[test]
fn a_task_that_is_still_running_when_the_report_is_built_is_reported() {
    let report = check_that_ends("still-running", false).unwrap_err();
    let names: Vec<_> = report.leaks().iter().map(|l| l.name()).collect();
    assert_eq!(names, [Some("still-running")], "{report}");
    // It is still parked: its sender went away with the predicate, which
    // the check has dropped, so it ends now.
    Options::new().settle(Duration::from_secs(20)).verify_none();
}

#[test]
fn tasks_another_test_registers_during_the_check_never_show_up() {
    let mine = Parked::start("mine");
    let (go, start) = mpsc::channel::<()>();
    let (spawned, done) = mpsc::channel::<mpsc::Sender<()>>();
    // Another test: its own thread, so its own scope.
    let other = std::thread::Builder::new()
        .name("races::some_other_test".into())
        .spawn(move || {
            start.recv().unwrap();
            let (release, parked) = mpsc::channel::<()>();
            let parked = Arc::new(Mutex::new(parked));
            for _ in 0..50 {
                let parked = parked.clone();
                leakcheck::thread::spawn(move || {
                    let _ = parked.lock().unwrap().recv();
                });
            }
            spawned.send(release).unwrap();
            // Its own check sees its own 50.
            let report = Options::new().settle(Duration::ZERO).find().unwrap_err();
            assert_eq!(report.leaks().len(), 50, "{report}");
        })
        .unwrap();
    let go = Mutex::new(Some(go));
    let done = Mutex::new(done);
    let releases = Arc::new(Mutex::new(Vec::new()));
    let keep_releases = releases.clone();
    let report = Options::new()
        .settle(Duration::ZERO)
        .ignore(move |_| {
            if let Some(go) = go.lock().unwrap().take() {
                go.send(()).unwrap();
                keep_releases
                    .lock()
                    .unwrap()
                    .push(done.lock().unwrap().recv().unwrap());
            }
            false
        })
        .find()
        .unwrap_err();
    let names: Vec<_> = report.leaks().iter().map(|l| l.name()).collect();
    assert_eq!(names, [Some("mine")], "{report}");
    other.join().unwrap();
    drop(releases);
    mine.end();
    Options::new().settle(Duration::from_secs(20)).verify_none();
}
