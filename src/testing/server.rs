//! The listener: a hand-written accept loop over hyper's HTTP/1 connections,
//! so that a handler can close its connection without answering
//! ([`Failure::DropConnection`](super::Failure::DropConnection)) and so that
//! shutdown can be graceful.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// How long in-flight requests may take to finish after a graceful shutdown: 1 s.
const GRACE: Duration = Duration::from_secs(1);

/// The connection a request came in on, put in its extensions.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    peer: SocketAddr,
    kill: Arc<Notify>,
}

impl Connection {
    /// The client's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Closes the connection at once; the request being served gets no
    /// response.
    pub(crate) fn drop_now(&self) {
        self.kill.notify_one();
    }
}

/// A running listener.
#[derive(Debug)]
pub(crate) struct Server {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:port` (0: a port the OS picks) and serves the router
    /// `make` builds for the bound address on a spawned task.
    pub(crate) async fn spawn(
        make: impl FnOnce(SocketAddr) -> Router,
        port: u16,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let router = make(addr);
        let (shutdown, signal) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, router, signal));
        Ok(Server {
            addr,
            shutdown,
            task: Some(task),
        })
    }

    /// Stops accepting, lets in-flight requests finish (up to one second),
    /// and waits for the server task to end.
    pub(crate) async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            // The task only ends by returning or by being aborted; neither is
            // an error worth reporting here.
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, router: Router, mut signal: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve(stream, peer, router.clone(), signal.clone()));
                }
                // Out of file descriptors and the like: back off a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = signal.changed() => break,
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    // Connections still open after the grace period are aborted when
    // `connections` is dropped.
    let _ = tokio::time::timeout(GRACE, drain).await;
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    mut signal: watch::Receiver<bool>,
) {
    // Best effort: small answers should not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let connection = Connection {
        peer,
        kill: Arc::clone(&kill),
    };
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(connection.clone());
        router.clone().oneshot(request)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        // Returning drops `conn` and with it the socket: no response is sent.
        _ = kill.notified() => return,
        _ = signal.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = kill.notified() => {}
    }
}
