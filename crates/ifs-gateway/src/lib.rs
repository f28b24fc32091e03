//! IFS gateway: the user's folders over WebDAV, for the tools people
//! already use (rclone, file managers, davfs2).
//!
//! One [`Drive`] holds one warm session with an entry node and the user
//! key for every request; [`webdav::serve`] answers HTTP with
//! `dav-server`'s handler over [`davfs::IfsFs`], a `DavFileSystem` whose
//! every operation is an `ifs-client` call. No protocol or storage logic
//! lives in the HTTP layer. Loopback by default: listening anywhere else
//! needs HTTP Basic credentials ([`webdav::BasicAuth`]).
#![deny(missing_docs)]

pub mod davfs;
mod drive;
mod pipe;
pub mod s3;
mod s3check;
pub mod s3keys;
mod s3list;
pub mod s3multipart;
pub mod webdav;

pub use drive::{Drive, DriveError, Entry, RangeRead};
