//! `ifsnode serve [--webdav ADDR] [--s3 ADDR]`: the user's folders over
//! WebDAV and S3, through one warm session with the entry node, until
//! Ctrl-C or SIGTERM.

use anyhow::{Context, bail};
use clap::Args;
use ifs_gateway::Drive;
use ifs_gateway::s3;
use ifs_gateway::webdav::{self, BasicAuth};
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::stdout::announceln;

/// Arguments of `ifsnode serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve WebDAV at IP:PORT (loopback unless --auth-file is given)
    #[arg(long, value_name = "IP:PORT", required_unless_present = "s3")]
    pub webdav: Option<SocketAddr>,
    /// Serve S3 at IP:PORT: every request must be signed with a key from
    /// `ifsnode s3-key create` (path-style addressing, any region)
    #[arg(long, value_name = "IP:PORT")]
    pub s3: Option<SocketAddr>,
    /// A file holding `USER:PASSWORD` on its first line: every request
    /// must carry them (HTTP Basic); required beyond loopback
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Replicas per chunk of the files stored
    #[arg(long, short = 'R', default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
}

fn read_auth(path: &PathBuf) -> anyhow::Result<BasicAuth> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    let Some((user, password)) = line.split_once(':') else {
        bail!("{}: the first line must be USER:PASSWORD", path.display());
    };
    if user.is_empty() || password.is_empty() {
        bail!("{}: neither user nor password may be empty", path.display());
    }
    Ok(BasicAuth::new(user, password))
}

/// Run `ifsnode serve`.
pub fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let auth = args.auth_file.as_ref().map(read_auth).transpose()?;
    if let Some(addr) = args.webdav {
        webdav::check_listen(addr, auth.as_ref())
            .context("serve: pass --auth-file FILE to listen beyond loopback")?;
    }
    let s3_keys = crate::cmd::s3key::key_file()?;
    if args.s3.is_some() && ifs_gateway::s3keys::load(&s3_keys)?.is_empty() {
        bail!(
            "serve --s3: no access keys in {}: run `ifsnode s3-key create` first",
            s3_keys.display()
        );
    }
    let replicas = usize::from(args.replicas);
    with_client(global, &args.peer, "serve", async |session, key| {
        // The drive's worker needs a session of its own: this one closes
        // when the command ends.
        let own = ifs_client::Session::connect(session.entry_addr().clone())
            .await
            .context("serve: cannot open the gateway's session")?;
        let drive = Drive::new(own, key.clone(), replicas).context("serve: cannot start")?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut servers = tokio::task::JoinSet::new();
        if let Some(addr) = args.webdav {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("serve: cannot listen on {addr}"))?;
            // A service: a closed stdout is logged once and serving goes on.
            announceln!("webdav: http://{}/", listener.local_addr()?);
            let (drive, auth, stop) = (drive.clone(), auth.clone(), stopped());
            servers.spawn(async move {
                webdav::serve(listener, drive, auth, stop)
                    .await
                    .context("serve: webdav")
            });
        }
        if let Some(addr) = args.s3 {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("serve: cannot listen on {addr}"))?;
            let bound = listener.local_addr()?;
            if !s3::is_loopback(bound) {
                tracing::warn!(
                    "serve --s3 {bound}: requests are signed, but bodies cross the network unencrypted"
                );
            }
            announceln!("s3: http://{bound}/");
            let service = s3::service(drive.clone(), s3_keys.clone());
            let stop = stopped();
            servers.spawn(async move {
                s3::serve(listener, service, stop)
                    .await
                    .context("serve: s3")
            });
        }
        let signal = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        tokio::select! {
            _ = signal => {}
            Some(done) = servers.join_next() => {
                // A server that ends on its own failed.
                done.context("serve: a server task panicked")??;
            }
        }
        let _ = stop_tx.send(true);
        while let Some(done) = servers.join_next().await {
            done.context("serve: a server task panicked")??;
        }
        Ok(())
    })
}
