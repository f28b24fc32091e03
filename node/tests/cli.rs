//! End-to-end tests of the real `ifsnode` binary: what a user sees (exit
//! code, message, files on disk), one module per subcommand or concern.

#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/closed_stdout.rs"]
mod closed_stdout;
#[path = "data_path/support.rs"]
#[allow(dead_code)] // each test binary uses a different part of it
mod cluster;
#[path = "cli/first_hour.rs"]
mod first_hour;
#[path = "cli/folders.rs"]
mod folders;
#[path = "admin/http.rs"]
#[allow(dead_code)] // the admin tests use the rest of it
mod http;
#[path = "cli/init.rs"]
mod init;
#[path = "cli/listen_port.rs"]
mod listen_port;
#[path = "cli/names.rs"]
mod names;
#[path = "cli/put_input.rs"]
mod put_input;
#[path = "cli/readme.rs"]
mod readme;
#[path = "cli/resume.rs"]
mod resume;
#[path = "cli/roundtrip.rs"]
mod roundtrip;
#[path = "cli/support.rs"]
mod support;
#[path = "cli/sync.rs"]
mod sync;
#[path = "cli/tree.rs"]
mod tree;
#[path = "cli/user_key.rs"]
mod user_key;
