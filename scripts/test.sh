#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test, and the ifs-core
# purity check. Run from anywhere: `scripts/test.sh`.
# NEXTEST_PROFILE selects the nextest profile (default: default; CI: ci).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check || fail "formatting differs; run 'cargo fmt --all'"
# The fuzz crate is a workspace of its own, which `--all` does not reach.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check ||
    fail "formatting differs in fuzz/; run 'cargo fmt --manifest-path fuzz/Cargo.toml'"

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings || fail "clippy"

step "ifs-core purity: no tokio, libp2p or redb in its normal dependencies"
tree="$(cargo tree -p ifs-core -e normal --prefix none --format '{p}')"
impure="$(grep -E '^(tokio|libp2p|redb)([-_][a-z0-9_-]+)? ' <<<"$tree" | sort -u || true)"
if [[ -n "$impure" ]]; then
    printf '%s\n' "$impure" >&2
    fail "ifs-core must stay pure, but it depends on the crates above (cargo tree -p ifs-core -e normal -i <crate> shows why)"
fi
echo "ok: ifs-core pulls in none of tokio, libp2p, redb"

step "cargo nextest run --workspace"
if ! command -v cargo-nextest >/dev/null 2>&1; then
    fail "cargo-nextest is missing: 'cargo install cargo-nextest' (or run .ci/run, which installs it)"
fi
cargo nextest run --workspace --profile "${NEXTEST_PROFILE:-default}" --no-tests=warn

step "doc tests (nextest does not run them)"
cargo test --workspace --doc

step "all checks passed"
