//! The WebDAV server: `dav-server`'s handler over [`IfsFs`], locks in
//! memory, served by axum; HTTP Basic authentication when configured
//! (required beyond loopback).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dav_server::DavHandler;
use dav_server::memls::MemLs;

use crate::davfs::{IfsFs, ReadHint};
use crate::drive::Drive;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without credentials.
    #[error("{0} is not a loopback address: give credentials to listen there")]
    NeedsAuth(SocketAddr),
    /// Serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// HTTP Basic credentials every request must carry.
#[derive(Clone)]
pub struct BasicAuth {
    expected: Vec<u8>,
}

impl BasicAuth {
    /// Credentials `user`:`password`.
    pub fn new(user: &str, password: &str) -> BasicAuth {
        let token = base64(format!("{user}:{password}").as_bytes());
        BasicAuth {
            expected: format!("Basic {token}").into_bytes(),
        }
    }

    /// Whether `header` carries them (compared without early exit).
    fn accepts(&self, header: Option<&HeaderValue>) -> bool {
        let got = header.map_or(&[][..], |h| h.as_bytes());
        if got.len() != self.expected.len() {
            return false;
        }
        got.iter()
            .zip(&self.expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The principal every request acts as: the gateway serves one user, so
/// locks need no other owner.
const PRINCIPAL: &str = "ifs";

#[derive(Clone)]
struct Gate {
    dav: DavHandler<ReadHint>,
    auth: Option<BasicAuth>,
}

async fn handle(State(gate): State<Gate>, req: Request) -> Response {
    if let Some(auth) = &gate.auth
        && !auth.accepts(req.headers().get(header::AUTHORIZATION))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"ifs\"")],
        )
            .into_response();
    }
    // Where a GET's ranges end, so its reads fetch no chunk past them.
    let hint = match *req.method() {
        Method::GET => ReadHint::from_range(
            req.headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok()),
        ),
        _ => ReadHint::default(),
    };
    gate.dav
        .handle_guarded(req, PRINCIPAL.to_string(), hint)
        .await
        .into_response()
}

/// Check where to listen: beyond loopback only with credentials.
pub fn check_listen(addr: SocketAddr, auth: Option<&BasicAuth>) -> Result<(), ServeError> {
    if !addr.ip().is_loopback() && auth.is_none() {
        return Err(ServeError::NeedsAuth(addr));
    }
    Ok(())
}

/// Serve `drive` over WebDAV on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    drive: Drive,
    auth: Option<BasicAuth>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    check_listen(listener.local_addr()?, auth.as_ref())?;
    let dav = DavHandler::<ReadHint>::builder()
        .filesystem(IfsFs::new(drive))
        .locksystem(MemLs::new())
        .build_handler();
    let app = Router::new()
        .fallback(handle)
        .with_state(Gate { dav, auth });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn only_the_configured_credentials_pass() {
        let auth = BasicAuth::new("Aladdin", "open sesame");
        let ok = HeaderValue::from_static("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(auth.accepts(Some(&ok)));
        let bad = HeaderValue::from_static("Basic QWxhZGRpbjpvcGVuIHNlc2FtZX==");
        assert!(!auth.accepts(Some(&bad)));
        assert!(!auth.accepts(None));
    }

    #[test]
    fn beyond_loopback_needs_credentials() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_listen(lo, None).is_ok());
        assert!(matches!(
            check_listen(any, None),
            Err(ServeError::NeedsAuth(_))
        ));
        assert!(check_listen(any, Some(&BasicAuth::new("u", "p"))).is_ok());
    }
}
