//! The user key: created on first use, and the user told to back it up.

use super::support::Run;

#[test]
fn the_first_use_says_to_back_the_new_user_key_up_once() {
    let home = tempfile::tempdir().unwrap();
    let show = || -> Run {
        std::process::Command::new(env!("CARGO_BIN_EXE_ifsnode"))
            .args(["key", "show"])
            .env("IFS_HOME", home.path())
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
            .into()
    };
    let first = show();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("back it up"), "{}", first.stderr);
    assert!(first.stderr.contains("user.key"), "{}", first.stderr);
    let again = show();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!again.stderr.contains("back it up"), "{}", again.stderr);
    assert_eq!(first.stdout, again.stdout, "the same key both times");
}
