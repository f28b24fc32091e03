//! `ifsnode share NAME --to KEY` and `ifsnode revoke NAME --from KEY`.
//!
//! KEY is the other user's public key as `ifsnode key show` prints it
//! (`ifspub1…`). A share adds a key wrap and a reader to the file's
//! manifest; the reader then runs `ifsnode get OWNER_KEY/NAME OUT`. A revoke
//! re-encrypts the file under a new key, puts it again for the remaining
//! readers and frees the old chunks.

use anyhow::Context;
use clap::Args;
use ifs_client::RevokeOptions;
use ifs_core::UserId;
use ifs_core::keys::UserPublic;
use ifs_core::name::printable;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::progress::{self, Progress};
use crate::stdout::outln;

/// Arguments of `ifsnode share`.
#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The file's name
    pub name: String,
    /// The reader's public key (`ifspub1…`, from their `ifsnode key show`)
    #[arg(long, value_name = "PUBKEY")]
    pub to: UserPublic,
    /// Print a JSON object
    #[arg(long)]
    pub json: bool,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// Arguments of `ifsnode revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The file's name
    pub name: String,
    /// The reader's public key (`ifspub1…`) to take access from
    #[arg(long, value_name = "PUBKEY")]
    pub from: UserPublic,
    /// Replicas per chunk of the re-encrypted copy
    #[arg(long, short = 'r', default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub replicas: u16,
    /// Print a JSON object
    #[arg(long)]
    pub json: bool,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// Run `ifsnode share`.
pub fn run_share(global: &GlobalArgs, args: ShareArgs) -> anyhow::Result<()> {
    let (name, to) = (args.name.clone(), args.to);
    let (r, owner) = with_client(global, &args.peer, "share", async |session, key| {
        let r = ifs_client::share(session, key, &name, &to)
            .await
            .with_context(|| format!("share {} failed", printable(&name)))?;
        Ok((r, key.public()))
    })?;
    let path = format!("{owner}/{}", args.name);
    let shown = printable(&args.name);
    if args.json {
        let v = serde_json::json!({
            "name": args.name,
            "version": r.version,
            "reader": to.user.to_hex(),
            "already_shared": r.already,
            "readers": r.readers,
            "get_as": path,
        });
        outln!("{v}")?;
    } else {
        if r.already {
            outln!("{shown} was already shared with {}", to.user)?;
        } else {
            outln!(
                "shared {shown} with {} (version {}, {} reader(s))",
                to.user,
                r.version,
                r.readers
            )?;
        }
        outln!("they read it with: ifsnode get {} OUT", printable(&path))?;
    }
    Ok(())
}

/// Run `ifsnode revoke`.
pub fn run_revoke(global: &GlobalArgs, args: RevokeArgs) -> anyhow::Result<()> {
    let (name, from) = (args.name.clone(), args.from);
    let bar = Progress::start(
        &format!("re-key {}", printable(&name)),
        None,
        progress::wanted(args.json),
    );
    let opts = RevokeOptions {
        replicas: usize::from(args.replicas),
        progress: Some(bar.counter()),
    };
    let r = with_client(global, &args.peer, "revoke", async |session, key| {
        ifs_client::revoke(session, key, &name, &from, opts)
            .await
            .with_context(|| format!("revoke {} failed", printable(&name)))
    })?;
    bar.finish();
    if args.json {
        let v = serde_json::json!({
            "name": args.name,
            "version": r.put.version,
            "revoked": from.user.to_hex(),
            "readers": r.readers,
            "chunks": r.put.chunks.len(),
            "old_chunks": r.old_chunks,
            "holders_told": r.holders,
            "holders_confirmed": r.confirmed,
        });
        outln!("{v}")?;
    } else {
        outln!(
            "revoked {} from {}: re-encrypted as version {} ({} chunks, {} reader(s) kept); \
             {} of {} holders freed the {} old chunks",
            printable(&args.name),
            from.user,
            r.put.version,
            r.put.chunks.len(),
            r.readers,
            r.confirmed,
            r.holders,
            r.old_chunks
        )?;
    }
    Ok(())
}

/// Who `get`'s OWNER names: a public key, or a bare user id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerArg {
    /// `ifspub1…`: enough to find what that user shares with this key.
    Key(UserPublic),
    /// 64 hex digits: names this user only (names are private, and a user
    /// id alone cannot locate what another user shares).
    Id(UserId),
}

/// Split `get`'s NAME into an owner and a name: `OWNER/NAME`, where OWNER is
/// a public key (`ifspub1…`) or a 64-hex user id, names another user's file;
/// anything else is one of your own files.
pub fn owner_and_name(arg: &str) -> (Option<OwnerArg>, &str) {
    if let Some((head, rest)) = arg.split_once('/')
        && !rest.is_empty()
    {
        if let Ok(k) = head.parse::<UserPublic>() {
            return (Some(OwnerArg::Key(k)), rest);
        }
        if head.len() == 64
            && let Ok(u) = UserId::from_hex(head)
        {
            return (Some(OwnerArg::Id(u)), rest);
        }
    }
    (None, arg)
}

/// The owner whose shared file `key` reads, `None` for `key`'s own files.
pub fn resolve_owner(
    owner: Option<OwnerArg>,
    key: &ifs_core::keys::UserKey,
) -> anyhow::Result<Option<UserPublic>> {
    match owner {
        None => Ok(None),
        Some(OwnerArg::Key(k)) if k.user == key.user_id() => Ok(None),
        Some(OwnerArg::Key(k)) => Ok(Some(k)),
        Some(OwnerArg::Id(u)) if u == key.user_id() => Ok(None),
        Some(OwnerArg::Id(_)) => anyhow::bail!(
            "name the owner by their public key (ifspub1…, from their `ifsnode key show`), \
             not their user id: file names are private, and only the public key finds \
             what its owner shares with you"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ifs_core::keys::UserKey;

    #[test]
    fn another_users_file_is_named_by_key_or_id_then_slash() {
        let k = UserKey::generate(&mut rand::rng());
        let pubkey = k.public().to_string();
        let id = k.user_id();
        assert_eq!(
            owner_and_name(&format!("{pubkey}/docs/a.txt")),
            (Some(OwnerArg::Key(k.public())), "docs/a.txt")
        );
        assert_eq!(
            owner_and_name(&format!("{}/a.txt", id.to_hex())),
            (Some(OwnerArg::Id(id)), "a.txt")
        );
        assert_eq!(owner_and_name("docs/a.txt"), (None, "docs/a.txt"));
        assert_eq!(owner_and_name("a.txt"), (None, "a.txt"));
        let other = UserKey::generate(&mut rand::rng());
        // A user id finds one's own files only: another user's private
        // names need their public key.
        assert_eq!(resolve_owner(Some(OwnerArg::Id(id)), &k).unwrap(), None);
        let refused = resolve_owner(Some(OwnerArg::Id(id)), &other).unwrap_err();
        assert!(refused.to_string().contains("public key"), "{refused}");
        assert_eq!(
            resolve_owner(Some(OwnerArg::Key(k.public())), &other).unwrap(),
            Some(k.public())
        );
        assert_eq!(
            owner_and_name(&format!("{pubkey}/")),
            (None, format!("{pubkey}/").as_str())
        );
    }
}
