//! File names: the one rule for a name in a user's namespace, checked by
//! the CLI before a put reserves anything and by nodes on every manifest
//! and live directory entry.
//!
//! A name is a relative path like `photos/2024/a.jpg`: non-empty UTF-8 of
//! at most [`MAX_NAME_LEN`] bytes, segments split by `/`, none of them
//! empty, `.` or `..`, no control characters (C0, DEL, C1), and, when it
//! has more than one segment, a first segment that is not a user id (64
//! hex digits) or a public key (`ifspub1…`): `get OWNER/NAME` reads such a
//! name as another user's file.

use std::borrow::Cow;

pub use crate::wire::MAX_NAME_LEN;

/// How every public key's text form begins.
const PUBLIC_KEY_PREFIX: &str = "ifspub1";

/// Why a name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("the name is {len} bytes, more than the {MAX_NAME_LEN} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a control character, which could drive a terminal
    /// that prints it.
    #[error("the name holds the control character {ch:?} at byte {at}")]
    ControlChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
    /// The name starts with `/`.
    #[error("the name starts with `/`; names are relative paths like photos/a.jpg")]
    LeadingSlash,
    /// The name ends with `/`.
    #[error("the name ends with `/`; name a file, not a directory")]
    TrailingSlash,
    /// Two `/` follow each other.
    #[error("the name has an empty segment (`//`)")]
    EmptySegment,
    /// A segment is `.` or `..`.
    #[error("the name has a `{segment}` segment; names are plain paths")]
    DotSegment {
        /// `.` or `..`.
        segment: &'static str,
    },
    /// The first of several segments is a user id or public key.
    #[error(
        "the name begins with a user id or public key, which `get OWNER/NAME` \
         reads as another user's file"
    )]
    OwnerLike,
}

/// Check `name` against the rule of the module doc.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    if let Some((at, ch)) = name.char_indices().find(|(_, c)| c.is_control()) {
        return Err(NameError::ControlChar { ch, at });
    }
    if name.starts_with('/') {
        return Err(NameError::LeadingSlash);
    }
    if name.ends_with('/') {
        return Err(NameError::TrailingSlash);
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err(NameError::EmptySegment),
            "." => return Err(NameError::DotSegment { segment: "." }),
            ".." => return Err(NameError::DotSegment { segment: ".." }),
            _ => {}
        }
    }
    if let Some((first, _)) = name.split_once('/')
        && names_an_owner(first)
    {
        return Err(NameError::OwnerLike);
    }
    Ok(())
}

/// Whether `get` could read `segment` as an owner: anything that parses
/// as a user id or public key, and more (surrounding spaces, bad digits).
fn names_an_owner(segment: &str) -> bool {
    let s = segment.trim();
    s.starts_with(PUBLIC_KEY_PREFIX) || (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `name` safe to print on a terminal: every control character escaped
/// (`\u{1b}`, `\n`), so a name from the network cannot drive the terminal.
pub fn printable(name: &str) -> Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().collect()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// [`printable`], cut to at most `max_chars` characters (ending in `…`),
/// for naming a long name in a one-line message.
pub fn shortened(name: &str, max_chars: usize) -> String {
    let shown = printable(name);
    if shown.chars().count() <= max_chars {
        return shown.into_owned();
    }
    let mut cut: String = shown.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass() {
        for ok in [
            "a",
            "a.txt",
            "photos/2024/a.jpg",
            "..hidden",
            "a..b/c",
            "with space/ünïcödé",
            "ifspub1abc",
            &"f".repeat(64),
            &"x".repeat(MAX_NAME_LEN),
            &format!("{}.d/x", "a".repeat(64)),
        ] {
            assert_eq!(validate_name(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn each_broken_rule_is_named() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for (bad, why) in [
            ("", NameError::Empty),
            (&*long, NameError::TooLong { len: 1025 }),
            ("/abs", NameError::LeadingSlash),
            ("dir/", NameError::TrailingSlash),
            ("a//b", NameError::EmptySegment),
            ("..", NameError::DotSegment { segment: ".." }),
            ("a/../b", NameError::DotSegment { segment: ".." }),
            ("./a", NameError::DotSegment { segment: "." }),
            (
                "a\u{1b}[2J",
                NameError::ControlChar {
                    ch: '\u{1b}',
                    at: 1,
                },
            ),
            ("a\nb", NameError::ControlChar { ch: '\n', at: 1 }),
            (
                "del\u{7f}",
                NameError::ControlChar {
                    ch: '\u{7f}',
                    at: 3,
                },
            ),
            (
                "c1\u{9b}31m",
                NameError::ControlChar {
                    ch: '\u{9b}',
                    at: 2,
                },
            ),
        ] {
            assert_eq!(validate_name(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn no_valid_name_reads_as_another_users_file() {
        let id = "ab".repeat(32);
        for bad in [
            format!("{id}/a.txt"),
            format!("{}/a", id.to_uppercase()),
            format!(" {id} /a"),
            "ifspub1deadbeef/x".into(),
        ] {
            assert_eq!(validate_name(&bad), Err(NameError::OwnerLike), "{bad:?}");
        }
        assert_eq!(validate_name(&id), Ok(()), "one segment is never an owner");
    }

    #[test]
    fn printed_names_carry_no_control_characters() {
        assert_eq!(printable("a.txt"), "a.txt");
        assert_eq!(printable("a\u{1b}[31mred\n"), "a\\u{1b}[31mred\\n");
        assert_eq!(printable("\u{9b}"), "\\u{9b}");
        assert_eq!(shortened("abcdef", 4), "abc…");
        assert_eq!(shortened("abc", 4), "abc");
        assert_eq!(shortened(&"x".repeat(2000), 40).chars().count(), 40);
    }
}
