//! `ifsnode serve --webdav ADDR`: the user's folders over WebDAV, through
//! one warm session with the entry node, until Ctrl-C or SIGTERM.

use anyhow::{Context, bail};
use clap::Args;
use ifs_gateway::Drive;
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
    #[arg(long, value_name = "IP:PORT")]
    pub webdav: SocketAddr,
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
    webdav::check_listen(args.webdav, auth.as_ref())
        .context("serve: pass --auth-file FILE to listen beyond loopback")?;
    let replicas = usize::from(args.replicas);
    with_client(global, &args.peer, "serve", async |session, key| {
        // The drive's worker needs a session of its own: this one closes
        // when the command ends.
        let own = ifs_client::Session::connect(session.entry_addr().clone())
            .await
            .context("serve: cannot open the gateway's session")?;
        let drive = Drive::new(own, key.clone(), replicas).context("serve: cannot start")?;
        let listener = tokio::net::TcpListener::bind(args.webdav)
            .await
            .with_context(|| format!("serve: cannot listen on {}", args.webdav))?;
        let bound = listener.local_addr()?;
        // A service: a closed stdout is logged once and serving goes on.
        announceln!("webdav: http://{bound}/");
        let stop = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        webdav::serve(listener, drive, auth, stop)
            .await
            .context("serve: webdav")?;
        Ok(())
    })
}
