//! Access keys for the S3 frontend, kept beside the user key in one file
//! (`$IFS_HOME/s3-keys`, mode 0600): one key per line,
//! `ACCESS_KEY_ID SECRET CREATED_MS`, `#` starts a comment.
//!
//! A key lets whoever holds it act on the user's folders through the
//! gateway as the user; the gateway checks every request's SigV4
//! signature against the secret of the access key it names. The user key
//! itself never leaves this machine.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rand::RngExt as _;

/// The key file's name inside `$IFS_HOME`.
pub const KEY_FILE: &str = "s3-keys";

/// How every access key id begins (then 17 of `A-Z0-9`: 20 in all, as
/// clients expect).
const ID_PREFIX: &str = "IFS";
/// Characters after the prefix.
const ID_RANDOM: usize = 17;
/// Secret length (letters and digits: nothing a shell would mangle).
const SECRET_LEN: usize = 40;
/// At most this many keys in one file.
pub const MAX_KEYS: usize = 256;

/// One access key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The access key id clients send (public).
    pub id: String,
    /// The secret they sign with.
    pub secret: String,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: u64,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// Reading or writing it failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Others may read it.
    #[error("{path} has mode {mode:04o}; it must be readable by its owner only (chmod 600 {path})")]
    Mode {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
    /// A line that is not `ID SECRET CREATED_MS`.
    #[error("{path}:{line}: {why}")]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The file holds [`MAX_KEYS`] already.
    #[error("{0} already holds {MAX_KEYS} keys: delete some first")]
    Full(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeysError + '_ {
    move |source| KeysError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `id` has the shape of an access key id this module makes.
pub fn valid_id(id: &str) -> bool {
    id.len() == ID_PREFIX.len() + ID_RANDOM
        && id.starts_with(ID_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn valid_secret(s: &str) -> bool {
    s.len() == SECRET_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Parse a key file's text.
pub fn parse(path: &str, text: &str) -> Result<Vec<AccessKey>, KeysError> {
    let mut keys: Vec<AccessKey> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let bad = |why: &str| KeysError::Malformed {
            path: path.to_string(),
            line: i + 1,
            why: why.to_string(),
        };
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [id, secret, created] = parts[..] else {
            return Err(bad("expected ACCESS_KEY_ID SECRET CREATED_MS"));
        };
        if !valid_id(id) {
            return Err(bad("the access key id is not IFS followed by 17 of A-Z0-9"));
        }
        if !valid_secret(secret) {
            return Err(bad("the secret is not 40 letters and digits"));
        }
        let created_ms = created
            .parse::<u64>()
            .map_err(|_| bad("CREATED_MS is not a number"))?;
        if keys.iter().any(|k| k.id == id) {
            return Err(bad("this access key id appears twice"));
        }
        if keys.len() == MAX_KEYS {
            return Err(bad("more keys than the gateway accepts"));
        }
        keys.push(AccessKey {
            id: id.to_string(),
            secret: secret.to_string(),
            created_ms,
        });
    }
    Ok(keys)
}

/// The keys in the file at `path` (none when it does not exist). A file
/// others may read is refused, as the user key is.
pub fn load(path: &Path) -> Result<Vec<AccessKey>, KeysError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeysError::Mode {
            path: path.display().to_string(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    parse(&path.display().to_string(), &text)
}

fn render(keys: &[AccessKey]) -> String {
    let mut out = String::from(
        "# IFS S3 gateway access keys: ACCESS_KEY_ID SECRET CREATED_MS\n\
         # Whoever holds a line can use your files through `ifsnode serve --s3`.\n",
    );
    for k in keys {
        out.push_str(&format!("{} {} {}\n", k.id, k.secret, k.created_ms));
    }
    out
}

/// Replace the file's content with `keys`: written to a fresh temporary
/// file (mode 0600) beside it, synced, then renamed over it.
fn store(path: &Path, keys: &[AccessKey]) -> Result<(), KeysError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".s3-keys.")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(render(keys).as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// Run `f` (a read and rewrite of the key file at `path`) holding an
/// exclusive lock on a lock file beside it, so two `s3-key create` (or
/// `delete`) at once cannot lose each other's change.
fn locked<T>(path: &Path, f: impl FnOnce() -> Result<T, KeysError>) -> Result<T, KeysError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock_path = dir.join(".s3-keys.lock");
    let held = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    held.lock().map_err(io_err(&lock_path))?;
    // Released when `held` is dropped, after `f`.
    f()
}

/// Make a new key, add it to the file at `path` and return it.
pub fn create(path: &Path, now_ms: u64) -> Result<AccessKey, KeysError> {
    locked(path, || create_unlocked(path, now_ms))
}

fn create_unlocked(path: &Path, now_ms: u64) -> Result<AccessKey, KeysError> {
    let mut keys = load(path)?;
    if keys.len() >= MAX_KEYS {
        return Err(KeysError::Full(path.display().to_string()));
    }
    const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let key = loop {
        let id = format!("{ID_PREFIX}{}", random_from(UPPER_DIGITS, ID_RANDOM));
        if !keys.iter().any(|k| k.id == id) {
            break AccessKey {
                id,
                secret: random_from(ALNUM, SECRET_LEN),
                created_ms: now_ms,
            };
        }
    };
    keys.push(key.clone());
    store(path, &keys)?;
    Ok(key)
}

/// Remove the key `id` from the file; whether it was there.
pub fn delete(path: &Path, id: &str) -> Result<bool, KeysError> {
    locked(path, || delete_unlocked(path, id))
}

fn delete_unlocked(path: &Path, id: &str) -> Result<bool, KeysError> {
    let mut keys = load(path)?;
    let before = keys.len();
    keys.retain(|k| k.id != id);
    if keys.len() == before {
        return Ok(false);
    }
    store(path, &keys)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_created_at_once_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ifs").join(KEY_FILE);
        let p = &path;
        let made: Vec<AccessKey> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| s.spawn(move || create(p, i).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let kept = load(&path).unwrap();
        assert_eq!(kept.len(), 8);
        for k in made {
            assert!(kept.iter().any(|x| x.id == k.id && x.secret == k.secret));
        }
    }

    #[test]
    fn keys_are_created_listed_and_deleted_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ifs").join(KEY_FILE);
        assert!(load(&path).unwrap().is_empty(), "no file: no keys");
        let a = create(&path, 1).unwrap();
        let b = create(&path, 2).unwrap();
        assert!(valid_id(&a.id) && valid_secret(&a.secret), "{a:?}");
        assert_ne!(a.id, b.id);
        assert_ne!(a.secret, b.secret);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).unwrap(), vec![a.clone(), b.clone()]);
        assert!(delete(&path, &a.id).unwrap());
        assert!(!delete(&path, &a.id).unwrap(), "already gone");
        assert_eq!(load(&path).unwrap(), vec![b]);
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        create(&path, 1).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(&path), Err(KeysError::Mode { .. })));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_line_number() {
        let ok_id = "IFSABCDEFGHIJ0123456";
        let ok_secret = "a".repeat(40);
        let cases = [
            format!("{ok_id} {ok_secret}"),
            format!("ifsabcdefghij0123456 {ok_secret} 1"),
            format!("{ok_id} short 1"),
            format!("{ok_id} {ok_secret} soon"),
            format!("{ok_id} {ok_secret} 1\n{ok_id} {ok_secret} 2"),
            format!("{ok_id} {} 1", "/".repeat(40)),
        ];
        for text in cases {
            let text = format!("# comment\n\n{text}\n");
            match parse("f", &text) {
                Err(KeysError::Malformed { line, .. }) => assert!(line >= 3, "{text}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        let good = parse("f", &format!("{ok_id} {ok_secret} 7 # mine\n")).unwrap();
        assert_eq!(good[0].created_ms, 7);
    }
}
