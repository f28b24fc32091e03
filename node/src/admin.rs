//! The admin endpoint of `ifsnode run`: the dashboard (`/`), the same data
//! as JSON (`/api/...`) and Prometheus metrics (`/metrics`), over HTTP with
//! axum. Handlers only read a [`NodeObserver`]; no protocol logic here.
//!
//! On loopback anyone on the machine may read it, as with `ifsnode peers`.
//! Beyond loopback every data route asks for the token in `DIR/admin.token`
//! (`Authorization: Bearer TOKEN`; the dashboard takes it from its URL's
//! `#token=` fragment, which browsers never send to the server).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ifs_node::NodeObserver;
use tokio::sync::watch;

mod api;
mod assets;

/// File in the data dir with the address the admin endpoint listens on.
pub const ADDR_FILE: &str = "admin.addr";
/// File in the data dir with the token asked for beyond loopback.
pub const TOKEN_FILE: &str = "admin.token";

/// What the handlers share.
#[derive(Clone)]
struct AdminState {
    node: NodeObserver,
    token: Option<Arc<str>>,
}

/// A running admin endpoint.
pub struct Admin {
    /// The bound address.
    pub addr: SocketAddr,
    /// Where the token is, when one is needed.
    pub token_file: Option<PathBuf>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Admin {
    /// Stop serving; requests in flight finish first.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Bind `listen` and serve the admin endpoint of `node`; write the bound
/// address to `DIR/admin.addr`.
pub async fn start(
    node: NodeObserver,
    listen: SocketAddr,
    data_dir: &Path,
) -> anyhow::Result<Admin> {
    let token_file = (!listen.ip().is_loopback()).then(|| data_dir.join(TOKEN_FILE));
    let token = match &token_file {
        Some(path) => Some(load_or_create_token(path)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for the admin endpoint"))?;
    let addr = listener.local_addr().context("admin listener address")?;
    crate::atomic_file::write_atomic(
        &data_dir.join(ADDR_FILE),
        format!("{addr}\n").as_bytes(),
        0o644,
    )?;
    let state = AdminState {
        node,
        token: token.map(Arc::from),
    };
    let app = router(state);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("admin endpoint stopped: {e}");
        }
    });
    Ok(Admin {
        addr,
        token_file,
        stop,
        task,
    })
}

/// Start the admin endpoint of `ifsnode run` and say where it is. A node
/// whose admin port is taken keeps running without one (it still stores
/// and serves): the failure is a warning, not an exit.
pub async fn start_for_run(
    node: NodeObserver,
    listen: Option<SocketAddr>,
    data_dir: &Path,
) -> Option<Admin> {
    let listen = listen?;
    match start(node, listen, data_dir).await {
        Ok(admin) => {
            crate::stdout::announceln!("  admin     http://{}/", admin.addr);
            if let Some(t) = &admin.token_file {
                crate::stdout::announceln!(
                    "  token     {} (open the dashboard as /#token=TOKEN)",
                    t.display()
                );
            }
            Some(admin)
        }
        Err(e) => {
            let e = format!("{e:#}");
            tracing::warn!("no admin endpoint: {e}");
            crate::stdout::errln!("ifsnode: warning: no admin endpoint: {e}");
            None
        }
    }
}

fn router(state: AdminState) -> Router {
    let data = Router::new()
        .route("/api/overview", get(api::overview))
        .route("/api/peers", get(api::peers))
        .route("/api/events", get(api::events))
        .route("/api/bandwidth", get(api::bandwidth))
        .route("/metrics", get(api::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/style.css", get(assets::style))
        .merge(data)
        .with_state(state)
}

/// Refuse data routes without the right token, when one is set.
async fn require_token(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let Some(want) = &state.token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if same_secret(given.as_bytes(), want.as_bytes()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "this admin endpoint needs the token in DIR/admin.token (Authorization: Bearer TOKEN)\n",
        )
            .into_response()
    }
}

/// Compare without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token in `path`, created (32 random bytes, hex, mode 0600) if absent.
fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    crate::atomic_file::write_atomic(path, format!("{token}\n").as_bytes(), 0o600)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE);
        let t = load_or_create_token(&path).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(
            load_or_create_token(&path).unwrap(),
            t,
            "kept across restarts"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }
}
