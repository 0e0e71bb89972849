//! The live-task profile: every task and thread leakcheck tracks, in every
//! scope, grouped by kind, spawn site and name, with how many of each group
//! are in each condition. What Go's goroutine profile
//! (`/debug/pprof/goroutine?debug=1`) shows, with spawn sites instead of
//! stacks and with the proof that a task can never finish.
//!
//! # Why and how
//!
//! A test catches a leak the test exercises; a service leaks under the
//! traffic nobody wrote a test for, a few tasks a minute, for weeks. The
//! count of live tasks (tokio's `num_alive_tasks`, Go's `NumGoroutine`)
//! says *that* something grows; a profile says *which spawn site* holds the
//! tasks and what they are stuck on. [`Watch`](crate::Watch) takes one
//! every interval and tells which sites keep growing.
//!
//! Taking a profile copies records out of the registry's shards 256 at a
//! time, each batch under its shard's lock, and groups them after letting
//! the lock go, so a spawn or an end waits at most for one batch's copy,
//! never for the grouping nor for the whole profile. What it keeps is one
//! entry per group, not per task. It never blocks on anything else and
//! never panics, so it may be called from any thread, including from inside
//! a task of a runtime that is busy. Tasks that start or end while it is
//! taken are counted or not, each at most once: every record keeps one slot
//! of one shard for its life, and each slot is read once.
//!
//! Without the `track` feature nothing is tracked and a profile is empty
//! (it says so when printed).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;
use std::time::{Duration, SystemTime};

use crate::registry::clock::Stamp;
use crate::registry::kind::Kind;
use crate::registry::loom_shim::Arc;
use crate::registry::record::TaskRecord;
use crate::registry::task_state::Condition;
use crate::registry::Registry;
use crate::report::render::{plural_as, write_chain, HumanDuration};

/// How many groups `Display` prints; `{:#}` prints them all.
const SHOWN: usize = 20;

/// Takes a profile of every live task and thread that leakcheck tracks, in
/// every scope: those spawned through leakcheck and, under
/// `--cfg tokio_unstable`, the tasks its hooks registered on the runtimes
/// it built. See the [module docs](mod@crate::profile) for what it costs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// for _ in 0..3 {
///     leakcheck::Builder::new()
///         .name("conn")
///         .spawn(std::future::pending::<()>());
/// }
/// tokio::task::yield_now().await; // let them run once
/// let profile = leakcheck::profile();
/// let conns = profile
///     .groups()
///     .iter()
///     .find(|g| g.name() == Some("conn"))
///     .unwrap();
/// assert_eq!(conns.count(), 3);
/// assert_eq!(conns.can_never_finish(), 3); // pending() keeps no waker
/// println!("{profile}");
/// # }
/// ```
pub fn profile() -> Profile {
    Profile::take()
}

/// A profile of the live tasks and threads: see [`profile`].
#[derive(Clone, Debug)]
pub struct Profile {
    taken: SystemTime,
    groups: Vec<ProfileGroup>,
    total: usize,
}

/// The tasks or threads of one kind, spawn site and name in a [`Profile`].
#[derive(Clone)]
pub struct ProfileGroup {
    kind: Kind,
    spawned_at: &'static Location<'static>,
    name: Option<Arc<str>>,
    count: usize,
    can_never_finish: usize,
    waiting: usize,
    runnable: usize,
    busy: usize,
    running: usize,
    oldest: Duration,
    /// The member with the longest chain of spawners, for the chain.
    deepest: Arc<TaskRecord>,
}

/// A group of a [`Profile`] that holds more tasks than in an earlier one:
/// see [`Profile::growth_since`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Growth {
    kind: Kind,
    spawned_at: &'static Location<'static>,
    name: Option<Arc<str>>,
    before: usize,
    now: usize,
}

/// What identifies a group: kind, site (by value: two copies of one
/// `Location` are one site) and name.
type Key<'a> = (Kind, &'static str, u32, u32, Option<&'a str>);

fn key_of<'a>(kind: Kind, site: &'static Location<'static>, name: Option<&'a str>) -> Key<'a> {
    (kind, site.file(), site.line(), site.column(), name)
}

impl Profile {
    fn take() -> Profile {
        let taken = SystemTime::now();
        let now = Stamp::now();
        let mut groups = Groups::default();
        #[cfg(tokio_unstable)]
        let mut twins = Twins::default();
        for scope in Registry::global().scopes() {
            scope.visit_in_batches(|batch| {
                for record in batch {
                    #[cfg(tokio_unstable)]
                    if twins.set_aside(record) {
                        continue;
                    }
                    groups.add(record, now);
                }
            });
        }
        #[cfg(tokio_unstable)]
        for record in twins.untwinned() {
            groups.add(&record, now);
        }
        let mut groups = groups.merged();
        groups.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                key_of(a.kind, a.spawned_at, a.name()).cmp(&key_of(b.kind, b.spawned_at, b.name()))
            })
        });
        let total = groups.iter().map(|g| g.count).sum();
        Profile {
            taken,
            groups,
            total,
        }
    }

    /// The groups, most tasks first (then by site, so the order is stable).
    pub fn groups(&self) -> &[ProfileGroup] {
        &self.groups
    }

    /// How many tasks and threads are live, in all groups.
    ///
    /// ```
    /// let profile = leakcheck::profile();
    /// assert_eq!(profile.total(), profile.groups().iter().map(|g| g.count()).sum::<usize>());
    /// ```
    pub fn total(&self) -> usize {
        self.total
    }

    /// When it was taken.
    ///
    /// ```
    /// let profile = leakcheck::profile();
    /// assert!(profile.taken() <= std::time::SystemTime::now());
    /// ```
    pub fn taken(&self) -> SystemTime {
        self.taken
    }

    /// The groups that hold more tasks now than in `earlier`, biggest
    /// increase first; a group new since then grew from 0.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let before = leakcheck::profile();
    /// let _leaked = leakcheck::spawn(std::future::pending::<()>());
    /// let growth = leakcheck::profile().growth_since(&before);
    /// assert_eq!(growth.len(), 1);
    /// assert_eq!((growth[0].before(), growth[0].now()), (0, 1));
    /// # }
    /// ```
    pub fn growth_since(&self, earlier: &Profile) -> Vec<Growth> {
        let before: HashMap<Key<'_>, usize> = earlier
            .groups
            .iter()
            .map(|g| (key_of(g.kind, g.spawned_at, g.name()), g.count))
            .collect();
        let mut grown: Vec<Growth> = self
            .groups
            .iter()
            .filter_map(|g| {
                let was = before
                    .get(&key_of(g.kind, g.spawned_at, g.name()))
                    .copied()
                    .unwrap_or(0);
                (g.count > was).then(|| Growth {
                    kind: g.kind,
                    spawned_at: g.spawned_at,
                    name: g.name.clone(),
                    before: was,
                    now: g.count,
                })
            })
            .collect();
        grown.sort_by(|a, b| {
            (b.now - b.before).cmp(&(a.now - a.before)).then_with(|| {
                key_of(a.kind, a.spawned_at, a.name()).cmp(&key_of(b.kind, b.spawned_at, b.name()))
            })
        });
        grown
    }
}

/// The groups while a profile is taken, found by kind and the address of
/// the spawn site's `Location` (two words to hash, for every record);
/// [`Groups::merged`] then joins groups whose sites are equal by value.
#[derive(Default)]
struct Groups {
    groups: Vec<ProfileGroup>,
    /// Lineage depth of each group's `deepest`.
    depths: Vec<usize>,
    by_site: HashMap<(Kind, usize), Vec<usize>, BuildHasherDefault<AddressHasher>>,
}

impl Groups {
    /// Counts `record` into its group, making the group on its first member.
    fn add(&mut self, record: &Arc<TaskRecord>, now: Stamp) {
        let kind = record.kind();
        let site = record.spawned_at();
        let name = record.name();
        let at_site = self
            .by_site
            .entry((kind, std::ptr::from_ref(site) as usize))
            .or_default();
        let index = match at_site.iter().find(|&&i| self.groups[i].name() == name) {
            Some(&i) => i,
            None => {
                self.groups.push(ProfileGroup {
                    kind,
                    spawned_at: site,
                    name: name.map(Arc::from),
                    count: 0,
                    can_never_finish: 0,
                    waiting: 0,
                    runnable: 0,
                    busy: 0,
                    running: 0,
                    oldest: Duration::ZERO,
                    deepest: record.clone(),
                });
                self.depths.push(record.lineage().count());
                at_site.push(self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let group = &mut self.groups[index];
        group.count += 1;
        group.oldest = group.oldest.max(now.since(record.born()));
        match record.condition(now) {
            Condition::CanNeverFinish { .. } => group.can_never_finish += 1,
            Condition::Waiting { .. } => group.waiting += 1,
            Condition::Runnable { .. } => group.runnable += 1,
            Condition::Busy { .. } => group.busy += 1,
            Condition::Running { .. } => group.running += 1,
            Condition::Pending { .. } | Condition::NotYetPolled | Condition::NotStarted => {}
        }
        // Most tasks have no parent: only a chain can be deeper.
        if record.parent().is_some() {
            let depth = record.lineage().count();
            if depth > self.depths[index] {
                self.depths[index] = depth;
                group.deepest = record.clone();
            }
        }
    }

    /// The groups, those of one site by value (two copies of one
    /// `Location`) joined.
    fn merged(self) -> Vec<ProfileGroup> {
        let Groups { groups, depths, .. } = self;
        let mut out: Vec<(ProfileGroup, usize)> = Vec::with_capacity(groups.len());
        let mut index: HashMap<SiteKey, usize> = HashMap::with_capacity(groups.len());
        for (group, depth) in groups.into_iter().zip(depths) {
            let key = group.site_key();
            match index.get(&key) {
                None => {
                    index.insert(key, out.len());
                    out.push((group, depth));
                }
                Some(&i) => {
                    let (into, deepest) = &mut out[i];
                    into.count += group.count;
                    into.can_never_finish += group.can_never_finish;
                    into.waiting += group.waiting;
                    into.runnable += group.runnable;
                    into.busy += group.busy;
                    into.running += group.running;
                    into.oldest = into.oldest.max(group.oldest);
                    if depth > *deepest {
                        *deepest = depth;
                        into.deepest = group.deepest;
                    }
                }
            }
        }
        out.into_iter().map(|(group, _)| group).collect()
    }
}

/// Hashes the two words of a `(Kind, address)` key with one multiply each:
/// addresses are already spread, and SipHash would cost more than the rest
/// of a record's visit.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

/// `tokio::spawn(leakcheck::track(f))` on a runtime leakcheck built is one
/// task seen twice, by `Tracked` and by tokio's spawn hook: the hook's
/// record is left out when a tracked record holds its tokio task id. The
/// ids are read after the shards are visited (they sit in a table of their
/// own, with its own locks).
#[cfg(tokio_unstable)]
#[derive(Default)]
struct Twins {
    hooked: Vec<Arc<TaskRecord>>,
    with_ids: Vec<Arc<TaskRecord>>,
}

#[cfg(tokio_unstable)]
impl Twins {
    /// Keeps what the check needs; true for a hook's record, which is
    /// counted later if it has no twin.
    fn set_aside(&mut self, record: &Arc<TaskRecord>) -> bool {
        if record.kind() == Kind::Untracked {
            self.hooked.push(record.clone());
            return true;
        }
        if record.has_ids() {
            self.with_ids.push(record.clone());
        }
        false
    }

    fn untwinned(self) -> impl Iterator<Item = Arc<TaskRecord>> {
        let tracked: std::collections::HashSet<tokio::task::Id> = if self.hooked.is_empty() {
            Default::default()
        } else {
            self.with_ids.iter().filter_map(|r| r.tokio_id()).collect()
        };
        self.hooked
            .into_iter()
            .filter(move |r| r.tokio_id().is_none_or(|id| !tracked.contains(&id)))
    }
}

/// A group's identity, owned, across profiles: kind, site by value (two
/// copies of one `Location` are one site) and name.
pub(crate) type SiteKey = (Kind, &'static str, u32, u32, Option<Arc<str>>);

impl ProfileGroup {
    pub(crate) fn site_key(&self) -> SiteKey {
        let at = self.spawned_at;
        (
            self.kind,
            at.file(),
            at.line(),
            at.column(),
            self.name.clone(),
        )
    }

    /// What they are: tasks, blocking tasks, threads, ...
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Where they were spawned.
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// The name they were spawned with, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// How many are live.
    pub fn count(&self) -> usize {
        self.count
    }

    /// How many can never finish: pending, not woken, and no clone of
    /// their waker left (the proof [`Report`](crate::Report) makes too).
    pub fn can_never_finish(&self) -> usize {
        self.can_never_finish
    }

    /// How many wait with a waker held by what they wait on (a channel,
    /// timer, `Notify`, lock or socket).
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// How many are woken and wait for a worker.
    pub fn runnable(&self) -> usize {
        self.runnable
    }

    /// How many are inside `poll` right now.
    pub fn busy(&self) -> usize {
        self.busy
    }

    /// How many blocking tasks or threads are running their closure.
    pub fn running(&self) -> usize {
        self.running
    }

    /// How long the oldest of them has been alive.
    pub fn oldest(&self) -> Duration {
        self.oldest
    }
}

impl fmt::Debug for ProfileGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileGroup")
            .field("kind", &self.kind)
            .field("spawned_at", &self.spawned_at)
            .field("name", &self.name)
            .field("count", &self.count)
            .field("can_never_finish", &self.can_never_finish)
            .field("waiting", &self.waiting)
            .field("runnable", &self.runnable)
            .field("busy", &self.busy)
            .field("running", &self.running)
            .field("oldest", &self.oldest)
            .finish()
    }
}

impl Growth {
    /// How `group` grew from `before`.
    pub(crate) fn of(group: &ProfileGroup, before: usize) -> Growth {
        Growth {
            kind: group.kind,
            spawned_at: group.spawned_at,
            name: group.name.clone(),
            before,
            now: group.count,
        }
    }

    /// The group's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The group's spawn site.
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// The group's name, if its tasks have one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// How many it held in the earlier profile.
    pub fn before(&self) -> usize {
        self.before
    }

    /// How many it holds now.
    pub fn now(&self) -> usize {
        self.now
    }
}

impl fmt::Display for Growth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(name) = &self.name {
            write!(f, " \"{name}\"")?;
        }
        write!(
            f,
            " spawned at {}: {} → {}",
            self.spawned_at, self.before, self.now
        )
    }
}

/// Reads like Go's `debug=1` goroutine profile: a header, then a block per
/// group, most tasks first, with its conditions and chain of spawners. At
/// most 20 groups; the alternate form (`{:#}`) prints every one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _stuck = leakcheck::Builder::new()
///     .name("handler")
///     .spawn(std::future::pending::<()>());
/// tokio::task::yield_now().await;
/// let text = leakcheck::profile().to_string();
/// assert!(text.starts_with("leakcheck profile: "));
/// assert!(text.contains("task \"handler\" spawned at "));
/// assert!(text.contains("1 can never finish"));
/// # }
/// ```
impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !cfg!(feature = "track") {
            return writeln!(
                f,
                "leakcheck profile: tracking is off (leakcheck was built without its `track` feature)"
            );
        }
        writeln!(
            f,
            "leakcheck profile: {} live in {}, taken {}",
            plural_as(self.total, "task or thread", "tasks and threads"),
            plural_as(self.groups.len(), "group", "groups"),
            Utc(self.taken)
        )?;
        let shown = if f.alternate() {
            self.groups.len()
        } else {
            SHOWN.min(self.groups.len())
        };
        for group in &self.groups[..shown] {
            writeln!(f)?;
            write!(f, "{group}")?;
        }
        let rest = &self.groups[shown..];
        if !rest.is_empty() {
            let tasks: usize = rest.iter().map(|g| g.count).sum();
            writeln!(
                f,
                "\n  ... {} more ({})",
                plural_as(rest.len(), "group", "groups"),
                plural_as(tasks, "task or thread", "tasks and threads")
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for ProfileGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  {} × {}", self.count, self.kind)?;
        if let Some(name) = &self.name {
            write!(f, " \"{name}\"")?;
        }
        writeln!(
            f,
            " spawned at {}, oldest {}",
            self.spawned_at,
            HumanDuration(self.oldest)
        )?;
        let parts: Vec<String> = [
            (self.can_never_finish, "can never finish"),
            (self.waiting, "waiting"),
            (self.runnable, "runnable"),
            (self.busy, "busy"),
            (self.running, "running"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let other = self.count
            - self.can_never_finish
            - self.waiting
            - self.runnable
            - self.busy
            - self.running;
        let mut line = parts.join(", ");
        if other > 0 {
            if !line.is_empty() {
                line.push_str(", ");
            }
            line.push_str(&format!("{other} pending"));
        }
        writeln!(f, "      {line}")?;
        write_chain(f, &self.deepest)
    }
}

/// A wall-clock time as `2026-12-01 21:58:03 UTC`.
struct Utc(SystemTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self
            .0
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (days, of_day) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        )
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm, for days since the epoch that are not negative).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn days_since_the_epoch_are_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
    }
}
