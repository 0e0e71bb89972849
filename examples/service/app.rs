//! A small HTTP service, written the way services are: a background worker,
//! a periodic job, and a handler that spawns work under a timeout. Every
//! spawn goes through leakcheck, which costs nothing in a release build
//! that turns tracking off.
//!
//! The handler carries the classic leak: when the work times out, the
//! handler answers and forgets the task, which goes on and then blocks
//! handing its result to a queue that only `/stats` drains, for as long as
//! the service runs. `Config::abort_on_timeout` is the one-line fix
//! (`work.abort()`).
//!
//! In production it serves the live-task profile at `/debug/tasks`, and
//! [`watch`] flags a spawn site that keeps growing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How the service behaves.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// How long `/report` waits for its work before answering without it.
    pub work_timeout: Duration,
    /// How long the work takes.
    pub work_takes: Duration,
    /// The fix for the handler leak: abort the work when it times out.
    pub abort_on_timeout: bool,
}

/// The growth watch a service runs in production: it samples the live-task
/// profile on its own thread, logs the sites it flags and keeps them.
pub struct Watched {
    pub watch: leakcheck::Watch,
    /// Every site flagged so far.
    pub alerts: Arc<std::sync::Mutex<Vec<leakcheck::Growth>>>,
    /// How many profiles it has taken.
    pub samples: Arc<std::sync::atomic::AtomicUsize>,
}

/// Starts the watch: a profile every `every`, flagging a site that grew in
/// each of the last `growing_for` samples and holds `at_least` tasks.
pub fn watch(every: Duration, growing_for: usize, at_least: usize) -> std::io::Result<Watched> {
    let alerts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let samples = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (seen, sampled) = (alerts.clone(), samples.clone());
    let watch = leakcheck::Watch::builder()
        .every(every)
        .growing_for(growing_for)
        .at_least(at_least)
        .on_sample(move |_| {
            sampled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .start(move |grown, _profile| {
            for site in grown {
                eprintln!("leakcheck: a spawn site keeps growing: {site}");
            }
            seen.lock().unwrap().extend_from_slice(grown);
        })?;
    Ok(Watched {
        watch,
        alerts,
        samples,
    })
}

/// A running service: its address, and what it takes to stop it.
pub struct Service {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Shared {
    config: Config,
    /// Finished work's results, kept for `/stats` (which drains them).
    results: mpsc::Sender<u64>,
    stats: tokio::sync::Mutex<mpsc::Receiver<u64>>,
}

impl Service {
    /// Binds to `127.0.0.1:0` and starts the periodic job and the accept
    /// loop.
    pub async fn start(config: Config) -> std::io::Result<Service> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        // Room for one result until `/stats` drains it: later results wait
        // for room (see `work`).
        let (results, stats) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            config,
            results,
            stats: tokio::sync::Mutex::new(stats),
        });
        let tasks = vec![
            leakcheck::Builder::new()
                .name("stats-flush")
                .spawn(periodic_flush(shutdown.clone())),
            leakcheck::Builder::new()
                .name("accept-loop")
                .spawn(accept_loop(listener, shared, shutdown.clone())),
        ];
        Ok(Service {
            addr,
            shutdown,
            tasks,
        })
    }

    /// Stops the background tasks and waits for them.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Flushes statistics every 50 ms until shutdown.
async fn periodic_flush(shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = shutdown.cancelled() => return,
        };
        let shared = shared.clone();
        let connection_shutdown = shutdown.clone();
        leakcheck::Builder::new()
            .name("connection")
            .spawn(async move {
                let service =
                    hyper::service::service_fn(move |request| handle(request, shared.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    () = connection_shutdown.cancelled() => {}
                }
            });
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.uri().path() {
        "/health" => "ok".to_owned(),
        // The live-task profile, as Go services serve
        // /debug/pprof/goroutine?debug=1.
        "/debug/tasks" => leakcheck::profile().to_string(),
        "/report" => report(&shared).await,
        "/stats" => {
            let mut stats = shared.stats.lock().await;
            let mut drained = 0;
            while stats.try_recv().is_ok() {
                drained += 1;
            }
            format!("{drained} results")
        }
        _ => "not found".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Spawns the work behind a report and waits for it, up to the timeout.
async fn report(shared: &Shared) -> String {
    let config = shared.config;
    let results = shared.results.clone();
    // The leak: on timeout, the work is forgotten unless aborted.
    let mut work = leakcheck::Builder::new()
        .name("report-work")
        .spawn(work(config.work_takes, results)); // site:report-work
    match tokio::time::timeout(config.work_timeout, &mut work).await {
        Ok(Ok(answer)) => format!("report: {answer}"),
        Ok(Err(_)) => "report failed".to_owned(),
        Err(_elapsed) => {
            if config.abort_on_timeout {
                work.abort(); // the fix: don't leave the work running
            }
            "report timed out".to_owned()
        }
    }
}

/// The slow work: computes, then hands its result to the worker's queue.
async fn work(takes: Duration, results: mpsc::Sender<u64>) -> u64 {
    tokio::time::sleep(takes).await;
    let answer = 42;
    let _ = results.send(answer).await;
    answer
}

/// Sends `GET path` over a fresh connection and returns the response body.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned())
}
