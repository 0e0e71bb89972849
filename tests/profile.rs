//! The live-task profile and the growth watch: groups and their
//! conditions, growth between profiles, counts while tasks spawn and end
//! on other threads, and the watch flagging a leak that grows but not a
//! pool that fills and stays. Other tests of this binary run in parallel,
//! so every assertion looks only at this file's spawn sites.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use leakcheck::{Kind, Profile, ProfileGroup};

/// The groups of `profile` spawned on the line of this file that `marker`
/// ends (`// site:<marker>`).
fn at(profile: &Profile, line: u32) -> Vec<&ProfileGroup> {
    profile
        .groups()
        .iter()
        .filter(|g| {
            g.spawned_at().file().ends_with("tests/profile.rs") && g.spawned_at().line() == line
        })
        .collect()
}

mod common;

const SOURCE: &str = include_str!("profile.rs");

fn line(marker: &str) -> u32 {
    common::site_line(SOURCE, marker)
}

#[tokio::test]
async fn groups_count_their_tasks_by_condition() {
    let (tx, rx) = tokio::sync::watch::channel(());
    let mut stuck = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let named = leakcheck::Builder::new().name("stuck");
        stuck.push(named.spawn(std::future::pending::<()>())); // site:stuck
    }
    for _ in 0..2 {
        let mut rx = rx.clone();
        let wait = async move { while rx.changed().await.is_ok() {} };
        waiting.push(leakcheck::spawn(wait)); // site:waiting
    }
    let (release, parked) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel::<()>();
    let thread = leakcheck::thread::spawn(move || {
        // site:thread
        started.send(()).unwrap();
        parked.recv()
    });
    is_started.recv().unwrap();
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    let profile = leakcheck::profile();
    let stuck_group = at(&profile, line("stuck"));
    assert_eq!(stuck_group.len(), 1, "{profile:#}");
    let g = stuck_group[0];
    assert_eq!(
        (g.kind(), g.name(), g.count(), g.can_never_finish()),
        (Kind::Task, Some("stuck"), 3, 3)
    );
    let w = at(&profile, line("waiting"))[0];
    assert_eq!(
        (w.count(), w.waiting(), w.can_never_finish()),
        (2, 2, 0),
        "{profile:#}"
    );
    let t = at(&profile, line("thread"))[0];
    assert_eq!(
        (t.kind(), t.count(), t.running()),
        (Kind::Thread, 1, 1),
        "{profile:#}"
    );
    assert!(g.oldest() <= w.oldest().max(g.oldest()));
    assert_eq!(
        profile.total(),
        profile
            .groups()
            .iter()
            .map(ProfileGroup::count)
            .sum::<usize>()
    );
    // The text names each group with its conditions.
    let text = format!("{profile:#}");
    assert!(
        text.contains("3 × task \"stuck\" spawned at tests/profile.rs:"),
        "{text}"
    );
    assert!(text.contains("      3 can never finish"), "{text}");
    assert!(text.contains("      2 waiting"), "{text}");
    // Once they end, they are gone from the next profile.
    for task in stuck {
        task.abort();
        let _ = task.await;
    }
    drop((tx, rx));
    for task in waiting {
        task.await.unwrap();
    }
    drop(release);
    thread.join().unwrap().unwrap_err();
    let after = leakcheck::profile();
    for marker in ["stuck", "waiting", "thread"] {
        assert!(at(&after, line(marker)).is_empty(), "{marker}: {after:#}");
    }
}

#[tokio::test]
async fn growth_is_what_a_site_gained_biggest_first() {
    let before = leakcheck::profile();
    let mut tasks = Vec::new();
    for _ in 0..5 {
        tasks.push(leakcheck::spawn(std::future::pending::<()>())); // site:five
    }
    tasks.push(leakcheck::spawn(std::future::pending::<()>())); // site:one
    let grown: Vec<_> = leakcheck::profile()
        .growth_since(&before)
        .into_iter()
        .filter(|g| g.spawned_at().file().ends_with("tests/profile.rs"))
        .map(|g| (g.spawned_at().line(), g.before(), g.now()))
        .filter(|(at, _, _)| [line("five"), line("one")].contains(at))
        .collect();
    assert_eq!(grown, [(line("five"), 0, 5), (line("one"), 0, 1)]);
    // Against itself nothing grew.
    let now = leakcheck::profile();
    assert!(now.growth_since(&now).is_empty());
    for task in tasks {
        task.abort();
    }
}

#[test]
fn counts_hold_while_tasks_spawn_and_end_on_other_threads() {
    // A fixed population at one site, and churn at another on 2 threads:
    // every profile counts the population exactly, the churn within what
    // can be alive at once, and never more in conditions than in all.
    const KEPT: usize = 200;
    const IN_FLIGHT: usize = 64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let kept: Vec<_> = (0..KEPT)
        .map(|_| runtime.spawn(leakcheck::track(std::future::pending::<()>()))) // site:kept
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicUsize::new(0));
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let (stop, churned, handle) = (stop.clone(), churned.clone(), runtime.handle().clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<_> = (0..IN_FLIGHT / 2)
                        .map(|_| handle.spawn(leakcheck::track(tokio::task::yield_now()))) // site:churn
                        .collect();
                    for task in batch {
                        handle.block_on(task).unwrap();
                    }
                    churned.fetch_add(IN_FLIGHT / 2, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut profiles = 0;
    while churned.load(Ordering::Relaxed) < 20_000 {
        let profile = leakcheck::profile();
        let kept_group = at(&profile, line("kept"));
        assert_eq!(
            kept_group.iter().map(|g| g.count()).sum::<usize>(),
            KEPT,
            "{profile:#}"
        );
        for g in at(&profile, line("churn")) {
            assert!(
                g.count() <= IN_FLIGHT,
                "{} in flight at most: {profile:#}",
                g.count()
            );
            let conditions =
                g.can_never_finish() + g.waiting() + g.runnable() + g.busy() + g.running();
            assert!(conditions <= g.count());
        }
        profiles += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for churner in churners {
        churner.join().unwrap();
    }
    for task in kept {
        task.abort();
    }
    assert!(profiles > 10, "the churn outran the profiles: {profiles}");
}

#[test]
fn a_profile_from_inside_a_task_on_a_busy_runtime_returns() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let total = runtime.block_on(async {
        let _spinning = leakcheck::spawn(async {
            loop {
                tokio::task::yield_now().await;
            }
        });
        leakcheck::spawn(async { leakcheck::profile().total() })
            .await
            .unwrap()
    });
    assert!(total >= 2, "the spinner and the profiling task itself");
}

#[test]
fn the_watch_flags_a_site_that_keeps_growing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let leaking = {
        let (stop, handle) = (stop.clone(), runtime.handle().clone());
        std::thread::spawn(move || {
            let mut leaked = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                leaked.push(handle.spawn(leakcheck::track(std::future::pending::<()>()))); // site:leak
                std::thread::sleep(Duration::from_millis(2));
            }
            leaked
        })
    };
    let (alert, alerts) = mpsc::channel();
    let watch = leakcheck::Watch::builder()
        .every(Duration::from_millis(20))
        .growing_for(3)
        .at_least(10)
        .start(move |grown, _profile| {
            for g in grown {
                if g.spawned_at().file().ends_with("tests/profile.rs") {
                    let _ = alert.send((g.spawned_at().line(), g.before(), g.now()));
                }
            }
        })
        .unwrap();
    let (site, before, now) = alerts
        .recv_timeout(Duration::from_secs(60))
        .expect("a site that grows in every interval is flagged");
    drop(watch);
    stop.store(true, Ordering::Relaxed);
    for task in leaking.join().unwrap() {
        task.abort();
    }
    assert_eq!(site, line("leak"));
    assert!(now >= 10 && now > before, "{before} → {now}");
}

#[test]
fn the_watch_leaves_a_pool_that_filled_and_stays() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let pool: Vec<_> = (0..50)
        .map(|_| runtime.spawn(leakcheck::track(std::future::pending::<()>()))) // site:pool
        .collect();
    let (sampled, samples) = mpsc::channel();
    let (alert, alerts) = mpsc::channel();
    let pool_line = line("pool");
    let watch = leakcheck::Watch::builder()
        .every(Duration::from_millis(5))
        .growing_for(2)
        .at_least(10)
        .on_sample(move |profile| {
            let _ = sampled.send(
                at(profile, pool_line)
                    .iter()
                    .map(|g| g.count())
                    .sum::<usize>(),
            );
        })
        .start(move |grown, _| {
            for g in grown {
                if g.spawned_at().file().ends_with("tests/profile.rs") {
                    let _ = alert.send(g.spawned_at().line());
                }
            }
        })
        .unwrap();
    // Ten samples, all of the full pool: more than the rule needs to flag.
    for _ in 0..10 {
        let count = samples
            .recv_timeout(Duration::from_secs(60))
            .expect("the watch samples");
        assert_eq!(count, 50);
    }
    drop(watch);
    assert_eq!(alerts.try_iter().filter(|l| *l == pool_line).count(), 0);
    for task in pool {
        task.abort();
    }
}

/// Under `tokio_unstable`, a runtime leakcheck built also shows the tasks
/// spawned with plain `tokio::spawn`, as untracked tasks, and a
/// `tokio::spawn(leakcheck::track(f))` once, not twice.
#[cfg(tokio_unstable)]
#[test]
fn plain_spawns_on_an_instrumented_runtime_are_in_the_profile_once() {
    let runtime =
        leakcheck::runtime::build(tokio::runtime::Builder::new_current_thread().enable_all())
            .unwrap();
    runtime.block_on(async {
        let plain = tokio::spawn(std::future::pending::<()>()); // site:plain
        let twin = tokio::spawn(leakcheck::track(std::future::pending::<()>())); // site:twin
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let profile = leakcheck::profile();
        let plain_groups = at(&profile, line("plain"));
        assert_eq!(plain_groups.len(), 1, "{profile:#}");
        assert_eq!(
            (plain_groups[0].kind(), plain_groups[0].count()),
            (Kind::Untracked, 1)
        );
        let twin_groups: usize = at(&profile, line("twin")).iter().map(|g| g.count()).sum();
        assert_eq!(
            twin_groups, 1,
            "one task, seen by the hook and by track: {profile:#}"
        );
        plain.abort();
        twin.abort();
    });
}
