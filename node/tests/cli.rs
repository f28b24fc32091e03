//! End-to-end tests of the real `ifsnode` binary: what a user sees (exit
//! code, message, files on disk), one module per subcommand or concern.

#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/init.rs"]
mod init;
#[path = "cli/roundtrip.rs"]
mod roundtrip;
#[path = "cli/support.rs"]
mod support;
