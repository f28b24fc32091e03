//! `ifsnode s3-key create|list|delete`: the access keys S3 clients sign
//! their requests with when they talk to `ifsnode serve --s3`, kept in
//! `$IFS_HOME/s3-keys` beside the user key (mode 0600).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ifs_gateway::s3keys;

use crate::cmd::GlobalArgs;
use crate::cmd::key::ifs_home;
use crate::stdout::outln;

/// Arguments of `ifsnode s3-key`.
#[derive(Debug, Args)]
pub struct S3KeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: S3KeyCommand,
}

/// `ifsnode s3-key` subcommands.
#[derive(Debug, Subcommand)]
pub enum S3KeyCommand {
    /// Make a new access key and print it with its secret (shown only here)
    Create {
        /// Print a JSON object
        #[arg(long)]
        json: bool,
    },
    /// List the access key ids (not their secrets)
    List {
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Delete an access key: requests signed with it are refused at once
    Delete {
        /// The access key id (IFS…)
        id: String,
    },
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The key file's path.
pub fn key_file() -> anyhow::Result<std::path::PathBuf> {
    Ok(ifs_home()?.join(s3keys::KEY_FILE))
}

/// Run `ifsnode s3-key`.
pub fn run(_global: &GlobalArgs, args: S3KeyArgs) -> anyhow::Result<()> {
    let path = key_file()?;
    match args.command {
        S3KeyCommand::Create { json } => {
            let k = s3keys::create(&path, now_ms())
                .with_context(|| format!("s3-key create: {}", path.display()))?;
            if json {
                let v = serde_json::json!({
                    "access_key_id": k.id,
                    "secret_access_key": k.secret,
                    "path": path.display().to_string(),
                });
                outln!("{v}")?;
            } else {
                outln!("access key id:     {}", k.id)?;
                outln!("secret access key: {}", k.secret)?;
                outln!("stored in:         {}", path.display())?;
                outln!("(anyone with both can use your files through `ifsnode serve --s3`)")?;
            }
        }
        S3KeyCommand::List { json } => {
            let keys = s3keys::load(&path)?;
            if json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|k| serde_json::json!({"access_key_id": k.id, "created_ms": k.created_ms}))
                    .collect();
                outln!("{}", serde_json::Value::Array(v))?;
            } else if keys.is_empty() {
                outln!("no S3 access keys: `ifsnode s3-key create` makes one")?;
            } else {
                for k in keys {
                    outln!("{}  created_ms {}", k.id, k.created_ms)?;
                }
            }
        }
        S3KeyCommand::Delete { id } => {
            if !s3keys::valid_id(&id) {
                bail!(
                    "s3-key delete: {id:?} is not an access key id (IFS followed by 17 of A-Z0-9)"
                );
            }
            if !s3keys::delete(&path, &id)? {
                bail!("s3-key delete: no key {id} in {}", path.display());
            }
            outln!("deleted {id}")?;
        }
    }
    Ok(())
}
