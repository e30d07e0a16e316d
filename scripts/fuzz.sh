#!/usr/bin/env bash
# Coverage-guided fuzzing of Latchkey's input parsers (cargo-fuzz/libFuzzer).
#
#   scripts/fuzz.sh [RUNS_PER_TARGET] [MAX_SECONDS_PER_TARGET] [TARGET...]
#
# RUNS_PER_TARGET defaults to 10000000, MAX_SECONDS_PER_TARGET to 600; each
# target stops at whichever comes first. With no TARGET, all of them run.
# Prints executions, exec/s, corpus size and crashes per target, and exits
# non-zero if any target crashed (crash inputs land in fuzz/artifacts/).
#
# Works on the stable toolchain: libFuzzer needs nightly-only flags, which
# RUSTC_BOOTSTRAP=1 unlocks. Builds are optimised with debug assertions
# and overflow checks on; set FUZZ_SANITIZER=address for ASan (about 2x
# slower; the crates forbid unsafe code, so the default is none).
set -euo pipefail

RUNS="${1:-10000000}"
SECS="${2:-600}"
shift $(( $# < 2 ? $# : 2 ))
ALL_TARGETS=(form_parser authorize_request token_request jws_verify config_loader)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
SANITIZER="${FUZZ_SANITIZER:-none}"
NICE="nice -n ${FUZZ_NICE:-10}"

cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    $NICE cargo install cargo-fuzz --locked
fi

echo "== building fuzz targets (sanitizer: $SANITIZER)"
$NICE cargo fuzz build -O -a -s "$SANITIZER" --codegen-units 16

host="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="fuzz/target/$host/release"

max_len() {
    case "$1" in
        form_parser) echo 16384 ;;   # FORM_LIMIT_BYTES
        token_request) echo 16384 ;; # past PARAM_MAX (4096) per field
        *) echo 8192 ;;
    esac
}

summary="fuzz/artifacts/summary.txt"
mkdir -p fuzz/artifacts
: >"$summary"
failed=0
for t in "${TARGETS[@]}"; do
    corpus="fuzz/corpus/$t"
    artifacts="fuzz/artifacts/$t/"
    mkdir -p "$corpus" "$artifacts"
    log="fuzz/artifacts/$t.log"
    args=(
        "$corpus"
        -runs="$RUNS"
        -max_total_time="$SECS"
        -max_len="$(max_len "$t")"
        -rss_limit_mb=2048
        -timeout=10
        -artifact_prefix="$artifacts"
        -print_final_stats=1
    )
    [ -d "fuzz/seeds/$t" ] && args+=("fuzz/seeds/$t")
    [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
    before=$(find "$artifacts" -type f | wc -l)
    echo "== $t: up to $RUNS runs / ${SECS}s"
    start=$(date +%s)
    set +e
    $NICE "$bin_dir/$t" "${args[@]}" >"$log" 2>&1
    rc=$?
    set -e
    elapsed=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    units=$(find "$corpus" -type f | wc -l)
    crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
    if [ "$rc" -ne 0 ]; then
        status="CRASHED (exit $rc; see $log and $artifacts)"
        failed=1
    else
        status="ok"
    fi
    line="$t: ${execs:-?} executions in ${elapsed}s (${rate:-?} exec/s), corpus $units, peak RSS ${rss:-?} MB, new crash files $crashes: $status"
    echo "$line" | tee -a "$summary"
done

echo "== summary (also in $summary)"
cat "$summary"
exit "$failed"
