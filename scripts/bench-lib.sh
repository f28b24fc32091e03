# Sourced by scripts/bench*.sh (not run on its own).
# bench_work NAME: a fresh work dir in $work, removed on exit (BENCH_KEEP=1
# keeps it), with its own user key dir; a devnet whose pid the script puts
# in $devnet_pid is stopped on exit too.

bench_cleanup() {
    if [[ -n "${devnet_pid:-}" ]]; then
        kill -TERM "$devnet_pid" 2>/dev/null || true
        wait "$devnet_pid" 2>/dev/null || true
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}

bench_work() {
    work="$(mktemp -d "${TMPDIR:-/tmp}/ifs-$1.XXXXXX")"
    devnet_pid=""
    trap bench_cleanup EXIT
    export IFS_HOME="$work/home"
    unset IFS_PEER IFS_DATA_DIR
}
