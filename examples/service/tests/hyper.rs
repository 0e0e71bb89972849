//! A real HTTP/1 client and server (hyper) over loopback: a connection kept
//! alive past the end of the test is a leaked connection task, even though
//! the test spawned it with a plain `tokio::spawn` as hyper's docs show.
//! On stable the report counts it; under `--cfg tokio_unstable` it names the
//! line of that `tokio::spawn`. The fixed twin closes the connection.

// The helpers of leakcheck's own integration tests.
#[path = "../../../tests/common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use common::{expect_clean, expect_report, site_line};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use leakcheck::Kind;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const SOURCE: &str = include_str!("hyper.rs");

/// Where a "pool" keeps connections for reuse: the leak is a connection
/// that stays here after the test.
static POOL: Mutex<Vec<SendRequest<Empty<Bytes>>>> = Mutex::new(Vec::new());

/// Every step on the wire is bounded, so a broken test fails, not hangs.
const STEP: Duration = Duration::from_secs(10);

/// A server on an ephemeral loopback port that answers every request on
/// one connection with "hello", until the client closes it.
async fn server() -> (std::net::SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = leakcheck::spawn(async move {
        // site:server
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await
            .unwrap();
    });
    (addr, server)
}

/// Connects, sends one GET and reads the whole body; returns the sender
/// (which keeps the connection open) and the connection task.
async fn get(addr: std::net::SocketAddr) -> (SendRequest<Empty<Bytes>>, JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    // hyper's own pattern: the connection is driven by a task of its own.
    let conn = tokio::spawn(async move { conn.await.unwrap() }); // site:conn
    let request = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
    let response = tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let body = tokio::time::timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.to_bytes(), "hello");
    (sender, conn)
}

fn runtime() -> tokio::runtime::Runtime {
    leakcheck::runtime::build(tokio::runtime::Builder::new_current_thread().enable_all()).unwrap()
}

#[test]
fn a_kept_alive_connection_is_a_leaked_connection_task() {
    runtime().block_on(async {
        let (addr, server) = server().await;
        let (sender, conn) = get(addr).await;
        // The bug: the connection goes back to a pool that outlives the test.
        POOL.lock().unwrap().push(sender);

        let report = expect_report().await;
        println!("{report}");
        // The server's connection waits for the client's next request.
        let tracked: Vec<_> = report
            .leaks()
            .iter()
            .filter(|l| l.kind() == Kind::Task)
            .collect();
        assert_eq!(tracked.len(), 1, "{report}");
        assert_eq!(tracked[0].spawned_at().line(), site_line(SOURCE, "server"));
        // The client's connection task is the one nobody tracked.
        let untracked: Vec<_> = report
            .leaks()
            .iter()
            .filter(|l| l.kind() == Kind::Untracked)
            .collect();
        if cfg!(tokio_unstable) {
            assert_eq!(untracked.len(), 1, "{report}");
            assert_eq!(untracked[0].spawned_at().line(), site_line(SOURCE, "conn"));
            assert_eq!(report.untracked_tasks(), 0, "{report}");
        } else {
            assert!(untracked.is_empty(), "{report}");
            assert_eq!(report.untracked_tasks(), 1, "{report}");
        }

        // Clean up: shutting the pool down closes the connection.
        POOL.lock().unwrap().clear();
        tokio::time::timeout(STEP, conn).await.unwrap().unwrap();
        tokio::time::timeout(STEP, server).await.unwrap().unwrap();
        expect_clean().await;
    });
}

#[test]
fn a_closed_connection_leaves_nothing() {
    runtime().block_on(async {
        let (addr, server) = server().await;
        let (sender, conn) = get(addr).await;
        // The fix: body read (in `get`), connection dropped.
        drop(sender);
        tokio::time::timeout(STEP, conn).await.unwrap().unwrap();
        tokio::time::timeout(STEP, server).await.unwrap().unwrap();
        expect_clean().await;
    });
}
