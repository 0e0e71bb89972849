//! tokio's task hooks (`--cfg tokio_unstable`): every task on a runtime
//! built by `runtime::build` gets a record, with the spawn site tokio saw,
//! owned by whoever spawned it. That is how a plain `tokio::spawn` inside a
//! library shows up in a report.
//!
//! - **spawn** runs on the spawning thread, before the task can be polled
//!   or end, so `owner::owner()` there names the spawner: a tracked task,
//!   another hooked task, or the test's own scope. A spawn made by
//!   leakcheck's own spawners is marked on the thread beforehand
//!   ([`spawning_tracked`]) and gets no second record; its tracked record
//!   just learns its task id.
//! - **before / after poll** make the hooked task the current owner while
//!   it runs, so what it spawns (tracked or not) belongs to the same test,
//!   and keep its poll count and times.
//! - **terminate** ends the record.
//!
//! `tokio::spawn(leakcheck::track(f))` is seen both ways; the check drops
//! the hook's record once the tracked one has learnt the same task id on
//! its first poll (`check::verify::drop_twins`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::registry::tokio_ids::IdHash;
use std::fmt;
use std::sync::OnceLock;

use tokio::runtime::{Builder, TaskMeta};

use crate::registry::kind::Kind;
use crate::registry::loom_shim::{lock, Arc, Mutex};
use crate::registry::owner::{self, Restore};
use crate::registry::record::{Registration, TaskRecord};

type Callback = Arc<dyn Fn(&TaskMeta<'_>) + Send + Sync>;

/// Your own task hooks, for [`runtime::build_with`](crate::runtime::build_with)
/// to run after leakcheck's: tokio keeps one callback per hook, so setting
/// them on the builder as well would replace leakcheck's (or be replaced).
///
/// ```
/// let hooks = leakcheck::runtime::Hooks::new()
///     .on_task_spawn(|meta| println!("spawned {} at {}", meta.id(), meta.spawned_at()))
///     .on_task_terminate(|meta| println!("ended {}", meta.id()));
/// let runtime =
///     leakcheck::runtime::build_with(&mut tokio::runtime::Builder::new_current_thread(), hooks)
///         .unwrap();
/// runtime.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// ```
#[cfg_attr(docsrs, doc(cfg(tokio_unstable)))]
#[derive(Default, Clone)]
#[must_use = "hand the hooks to leakcheck::runtime::build_with"]
pub struct Hooks {
    spawn: Option<Callback>,
    terminate: Option<Callback>,
    before_poll: Option<Callback>,
    after_poll: Option<Callback>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_task_spawn", &self.spawn.is_some())
            .field("on_task_terminate", &self.terminate.is_some())
            .field("on_before_task_poll", &self.before_poll.is_some())
            .field("on_after_task_poll", &self.after_poll.is_some())
            .finish()
    }
}

impl Hooks {
    /// No hooks of your own.
    ///
    /// ```
    /// let hooks = leakcheck::runtime::Hooks::new();
    /// # let _ = hooks;
    /// ```
    pub fn new() -> Hooks {
        Hooks::default()
    }

    /// Like tokio's `Builder::on_task_spawn`; runs after leakcheck's.
    ///
    /// ```
    /// let hooks = leakcheck::runtime::Hooks::new().on_task_spawn(|meta| println!("{}", meta.id()));
    /// # let _ = hooks;
    /// ```
    pub fn on_task_spawn(mut self, f: impl Fn(&TaskMeta<'_>) + Send + Sync + 'static) -> Hooks {
        self.spawn = Some(Arc::new(f));
        self
    }

    /// Like tokio's `Builder::on_task_terminate`; runs after leakcheck's.
    ///
    /// ```
    /// let hooks = leakcheck::runtime::Hooks::new().on_task_terminate(|meta| println!("{}", meta.id()));
    /// # let _ = hooks;
    /// ```
    pub fn on_task_terminate(mut self, f: impl Fn(&TaskMeta<'_>) + Send + Sync + 'static) -> Hooks {
        self.terminate = Some(Arc::new(f));
        self
    }

    /// Like tokio's `Builder::on_before_task_poll`; runs after leakcheck's.
    ///
    /// ```
    /// let hooks = leakcheck::runtime::Hooks::new().on_before_task_poll(|meta| println!("{}", meta.id()));
    /// # let _ = hooks;
    /// ```
    pub fn on_before_task_poll(
        mut self,
        f: impl Fn(&TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Hooks {
        self.before_poll = Some(Arc::new(f));
        self
    }

    /// Like tokio's `Builder::on_after_task_poll`; runs before leakcheck's
    /// (the reverse of the before-poll order, so yours nests inside).
    ///
    /// ```
    /// let hooks = leakcheck::runtime::Hooks::new().on_after_task_poll(|meta| println!("{}", meta.id()));
    /// # let _ = hooks;
    /// ```
    pub fn on_after_task_poll(
        mut self,
        f: impl Fn(&TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Hooks {
        self.after_poll = Some(Arc::new(f));
        self
    }
}

/// What one hooked poll replaced as the current owner (`None` for a task
/// without a hook record).
type Replaced = Option<(Arc<TaskRecord>, Restore)>;

thread_local! {
    /// Set by leakcheck's spawners around their `tokio::spawn`: the task
    /// about to be spawned is this tracked record's.
    static SPAWNING: Cell<Option<Arc<TaskRecord>>> = const { Cell::new(None) };
    /// What each hooked poll on this thread replaced as the current owner,
    /// innermost last (`None` for a task without a hook record).
    static POLLING: RefCell<Vec<Replaced>> = const { RefCell::new(Vec::new()) };
}

/// Runs `spawn` (a `tokio::spawn` of `record`'s future) so that the spawn
/// hook knows the task is already tracked. Only the tracking spawners call
/// it.
#[cfg(feature = "track")]
pub(crate) fn spawning_tracked<R>(
    record: Option<&Arc<TaskRecord>>,
    spawn: impl FnOnce() -> R,
) -> R {
    let Some(record) = record else {
        return spawn();
    };
    let _ = SPAWNING.try_with(|s| s.set(Some(record.clone())));
    let out = spawn();
    // Not taken if the spawn didn't reach the hook (no instrumented
    // runtime, or no runtime at all).
    let _ = SPAWNING.try_with(Cell::take);
    out
}

const SHARDS: usize = 16;

/// Hook records by tokio task id, sharded by id.
struct Live {
    shards: [Mutex<HashMap<tokio::task::Id, Registration, IdHash>>; SHARDS],
}

fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(|| Live {
        shards: std::array::from_fn(|_| Mutex::default()),
    })
}

fn shard(id: tokio::task::Id) -> &'static Mutex<HashMap<tokio::task::Id, Registration, IdHash>> {
    use std::hash::BuildHasher;
    // Middle bits: the map inside the shard indexes by the low ones and
    // tags by the top ones.
    let hash = IdHash::default().hash_one(id);
    &live().shards[(hash >> 32) as usize % SHARDS]
}

fn record_of(id: tokio::task::Id) -> Option<Arc<TaskRecord>> {
    lock(shard(id)).get(&id).and_then(|r| r.get().cloned())
}

/// Installs leakcheck's task hooks on `builder`, chained with `user`'s.
/// `runtime` is filled in with the runtime's id once it is built.
/// Sets only the user's hooks: what a build without the `track` feature
/// does, where leakcheck registers nothing.
pub(crate) fn install_users_only(builder: &mut Builder, user: Hooks) {
    let Hooks {
        spawn,
        terminate,
        before_poll,
        after_poll,
    } = user;
    if let Some(f) = spawn {
        builder.on_task_spawn(move |meta| f(meta));
    }
    if let Some(f) = terminate {
        builder.on_task_terminate(move |meta| f(meta));
    }
    if let Some(f) = before_poll {
        builder.on_before_task_poll(move |meta| f(meta));
    }
    if let Some(f) = after_poll {
        builder.on_after_task_poll(move |meta| f(meta));
    }
}

pub(crate) fn install(
    builder: &mut Builder,
    user: Hooks,
    runtime: Arc<OnceLock<tokio::runtime::Id>>,
) {
    let Hooks {
        spawn,
        terminate,
        before_poll,
        after_poll,
    } = user;
    builder.on_task_spawn(move |meta| {
        on_spawn(meta, runtime.get().copied());
        if let Some(f) = &spawn {
            f(meta);
        }
    });
    builder.on_task_terminate(move |meta| {
        let ended = lock(shard(meta.id())).remove(&meta.id());
        drop(ended); // ends the record, outside the shard lock
        if let Some(f) = &terminate {
            f(meta);
        }
    });
    builder.on_before_task_poll(move |meta| {
        let record = record_of(meta.id());
        let restore = record.map(|record| {
            record.hook_poll_begin();
            (record.clone(), crate::registry::owner::enter(record))
        });
        let _ = POLLING.try_with(|p| p.borrow_mut().push(restore));
        if let Some(f) = &before_poll {
            f(meta);
        }
    });
    builder.on_after_task_poll(move |meta| {
        if let Some(f) = &after_poll {
            f(meta);
        }
        let polled = POLLING.try_with(|p| p.borrow_mut().pop()).ok().flatten();
        if let Some((record, restore)) = polled.flatten() {
            record.hook_poll_end();
            drop(restore);
        }
    });
}

fn on_spawn(meta: &TaskMeta<'_>, runtime: Option<tokio::runtime::Id>) {
    let id = meta.id();
    if let Some(tracked) = SPAWNING.try_with(Cell::take).ok().flatten() {
        tracked.spawned_as(id, runtime);
        return;
    }
    let registration = owner::register(Kind::Untracked, None, meta.spawned_at());
    registration.record().spawned_as(id, runtime);
    lock(shard(id)).insert(id, registration);
}
