#!/usr/bin/env bash
# Fuzz every decoder of network or disk input (cargo-fuzz, libFuzzer; the
# targets are in fuzz/, see README.md "Fuzzing").
#
#   scripts/fuzz.sh build                  build every target
#   scripts/fuzz.sh smoke [SECS]           every target briefly, SECS in all
#                                          (default 60); fails on any crash
#   scripts/fuzz.sh full [RUNS] [TARGET..] each target (default: all) for RUNS
#                                          executions (default 1000000); prints
#                                          "target executions crashes"
#   scripts/fuzz.sh seeds                  rewrite the seed corpora fuzz/corpus/*/seed-N
#   scripts/fuzz.sh list                   the targets
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`). cargo-fuzz passes
# nightly-only flags (-Zsanitizer=address and friends); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them. Builds go to FUZZ_TARGET_DIR
# (default ~/.cache/ifs/fuzz-target); corpora the fuzzer grows and crash
# inputs go to FUZZ_WORK_DIR (default ~/.cache/ifs/fuzz-work), never into
# the repository. Each target runs as one job under `nice`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/ifs/fuzz-target}"
work="${FUZZ_WORK_DIR:-$HOME/.cache/ifs/fuzz-work}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin="$CARGO_TARGET_DIR/$triple/release"

targets() {
    sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -vx 'ifs-fuzz\|ifs_fuzz'
}

build() {
    command -v cargo-fuzz >/dev/null 2>&1 ||
        { echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz" >&2; exit 1; }
    nice cargo fuzz build
}

# run TARGET OUT LIBFUZZER-ARGS..: one target, one job; its log goes to OUT.
# Returns libFuzzer's status (non-zero on a crash, leak, timeout or OOM).
run() {
    local t=$1 out=$2
    shift 2
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    # New inputs go to the first corpus directory (the work dir); the
    # committed seeds are read only.
    # A target without committed seeds yet starts from the work corpus.
    local seeds=()
    [[ -d "$root/fuzz/corpus/$t" ]] && seeds=("$root/fuzz/corpus/$t")
    nice "$bin/$t" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/" "$@" \
        "$work/corpus/$t" "${seeds[@]}" >"$out" 2>&1
}

executions() {
    sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -n 1
}

crash_files() {
    mkdir -p "$work/artifacts/$1"
    find "$work/artifacts/$1" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l
}

cmd="${1:-smoke}"
shift || true
case "$cmd" in
list)
    targets
    ;;
build)
    build
    ;;
seeds)
    nice cargo run --quiet --manifest-path fuzz/Cargo.toml --example seeds -- "$root/fuzz/corpus"
    ;;
smoke)
    total="${1:-60}"
    build
    mapfile -t all < <(targets)
    per=$((total / ${#all[@]}))
    ((per >= 1)) || per=1
    logs="$work/logs/smoke"
    mkdir -p "$logs"
    failed=()
    for t in "${all[@]}"; do
        if run "$t" "$logs/$t.log" -max_total_time="$per"; then
            printf '%-20s %10s executions: ok\n' "$t" "$(executions "$logs/$t.log")"
        else
            printf '%-20s CRASHED (log %s)\n' "$t" "$logs/$t.log"
            grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$logs/$t.log" | head -n 8 || true
            failed+=("$t")
        fi
    done
    if ((${#failed[@]})); then
        echo "fuzz smoke FAILED: ${failed[*]} (inputs under $work/artifacts)" >&2
        exit 1
    fi
    echo "fuzz smoke: ${#all[@]} targets, no crash"
    ;;
full)
    runs="${1:-1000000}"
    shift || true
    if (($#)); then all=("$@"); else mapfile -t all < <(targets); fi
    build
    logs="$work/logs/full"
    mkdir -p "$logs"
    rows=()
    status=0
    for t in "${all[@]}"; do
        before=$(crash_files "$t")
        start=$SECONDS
        run "$t" "$logs/$t.log" -runs="$runs" || status=1
        crashes=$(($(crash_files "$t") - before))
        rows+=("$(printf '%-20s %12s %8s %7ss' "$t" "$(executions "$logs/$t.log")" "$crashes" $((SECONDS - start)))")
        echo "${rows[-1]}"
    done
    printf '\n%-20s %12s %8s %8s\n' target executions crashes time
    printf '%s\n' "${rows[@]}"
    exit "$status"
    ;;
*)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
