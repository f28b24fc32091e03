//! The user key (`$IFS_HOME/user.key`, created on first use with mode 0600),
//! `ifsnode key show`, and the client context the data-path commands share:
//! the key plus a session with the entry node.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ifs_client::Session;
use ifs_core::keys::UserKey;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd::GlobalArgs;
use crate::cmd::peers::PeerArgs;
use crate::peer_addr;
use crate::stdout::{errln, outln};

/// Environment variable naming the directory of the user key.
pub const HOME_ENV: &str = "IFS_HOME";
/// Default of `$IFS_HOME`, relative to `$HOME`.
pub const DEFAULT_HOME: &str = ".config/ifs";
/// The key file inside `$IFS_HOME`.
pub const KEY_FILE: &str = "user.key";

/// Arguments of `ifsnode key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// What to do with the key.
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// `ifsnode key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print the user's public keys (created on first use)
    Show {
        /// Print a JSON object
        #[arg(long)]
        json: bool,
    },
}

/// The directory holding the user key: `$IFS_HOME`, else `~/.config/ifs`.
pub fn ifs_home() -> anyhow::Result<PathBuf> {
    if let Some(h) = std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither IFS_HOME nor HOME is set: cannot place the user key")?;
    Ok(PathBuf::from(home).join(DEFAULT_HOME))
}

/// Load the user key in `dir`, creating it (dir 0700, file 0600) if absent.
pub fn load_or_create(dir: &Path) -> anyhow::Result<UserKey> {
    let path = dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "user key {} has mode {mode:04o}; it must be readable by its owner only (chmod 600 {})",
                    path.display(),
                    path.display()
                );
            }
            UserKey::from_bytes(&bytes).with_context(|| format!("bad user key {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir, &path),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn create(dir: &Path, path: &Path) -> anyhow::Result<UserKey> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let key = UserKey::generate(&mut rand::rng());
    // create_new: two first uses at once must not end with two keys.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match file {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(&key.to_bytes())
                .and_then(|_| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "created a new user key");
            errln!(
                "created your user key {}: back it up (a copy kept somewhere safe); without it your files can be neither read nor deleted",
                path.display()
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(dir),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Run `ifsnode key`.
pub fn run(_global: &GlobalArgs, args: KeyArgs) -> anyhow::Result<()> {
    match args.command {
        KeyCommand::Show { json } => {
            let dir = ifs_home()?;
            let key = load_or_create(&dir)?;
            let user = key.user_id().to_hex();
            let x = hex::encode(key.x25519_public());
            let public = key.public().to_string();
            let path = dir.join(KEY_FILE);
            if json {
                let v = serde_json::json!({
                    "public_key": public,
                    "user_id": user,
                    "x25519_public": x,
                    "path": path.display().to_string(),
                });
                outln!("{v}")?;
            } else {
                outln!("public key:        {public}")?;
                outln!("                   (give this to people who share files with you)")?;
                outln!("user id (ed25519): {user}")?;
                outln!("x25519 public key: {x}")?;
                outln!("key file:          {}", path.display())?;
            }
            Ok(())
        }
    }
}

/// Run `work` with the user key and a session to the entry node, on a
/// fresh runtime, the whole command within `--timeout` (see
/// [`PeerArgs::deadline`]).
pub fn with_client<T>(
    global: &GlobalArgs,
    peer: &PeerArgs,
    command: &str,
    work: impl AsyncFnOnce(&Session, &UserKey) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let key = load_or_create(&ifs_home()?)?;
    with_session(global, peer, command, async |session| {
        work(session, &key).await
    })
}

/// How long connecting may take when the command has no deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Run `work` with a session to the entry node (no user key: commands that
/// only ask the node must not create one), on a fresh runtime. The whole
/// command, connecting included, ends at `--timeout`; connecting alone
/// never waits longer than 10 s. Only errors that came from talking to the
/// node name its address and where the address came from.
pub fn with_session<T>(
    global: &GlobalArgs,
    peer: &PeerArgs,
    command: &str,
    work: impl AsyncFnOnce(&Session) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let data_dir = global.data_dir()?;
    let (addr, source) = peer_addr::resolve(peer.peer.as_ref(), &data_dir)?;
    let deadline = peer.deadline(command);
    let connect_timeout = deadline.map_or(CONNECT_TIMEOUT, |d| d.min(CONNECT_TIMEOUT));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let run = async {
        let session = match Session::connect_with(addr.clone(), connect_timeout).await {
            Ok(s) => s,
            Err(e) => return Err(peer_addr::unreachable(&addr, &source, &data_dir, &e)),
        };
        let out = work(&session).await.map_err(|e| {
            if from_entry_node(&e) {
                e.context(format!("node {addr} (from {source})"))
            } else {
                e
            }
        });
        session.close().await;
        out
    };
    match deadline {
        None => rt.block_on(run),
        Some(d) => match rt.block_on(async { tokio::time::timeout(d, run).await }) {
            Ok(out) => out,
            Err(_) => {
                // A task may sit in a blocking read (stdin): do not wait for it.
                rt.shutdown_background();
                bail!(
                    "{command} did not finish within {} s (--timeout SECS allows more)",
                    d.as_secs()
                );
            }
        },
    }
}

/// Whether `e` came from talking to the entry node (a request that failed
/// or a refusal), rather than from the user's input or this machine.
pub fn from_entry_node(e: &anyhow::Error) -> bool {
    use ifs_client::{ClientError, GetError, PutError, ShareError};
    let put = |p: &PutError| matches!(p, PutError::Session(_));
    let get = |g: &GetError| matches!(g, GetError::Session(_));
    e.chain().any(|c| {
        c.is::<ClientError>()
            || c.downcast_ref::<PutError>().is_some_and(put)
            || c.downcast_ref::<GetError>().is_some_and(get)
            || c.downcast_ref::<ShareError>().is_some_and(|s| match s {
                ShareError::Session(_) => true,
                ShareError::Get(g) => get(g),
                ShareError::Put(p) => put(p),
                _ => false,
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("ifs");
        let a = load_or_create(&home).unwrap();
        let mode = std::fs::metadata(home.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_or_create(&home).unwrap();
        assert_eq!(a.user_id(), b.user_id());
        std::fs::set_permissions(home.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert!(load_or_create(&home).is_err(), "a readable key is refused");
    }
}
