#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for a bounded time each.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install
# nightly`, `cargo install cargo-fuzz`). Without them it says so, replays
# the saved corpora on stable instead (`cargo test --test fuzz_corpus`,
# what CI runs) and exits 0.
#
# Fuzzers run at nice 19 (they use idle CPU only). New inputs go to
# fuzz/target/corpus/<target>/ (not committed); FUZZ_MERGE=1 merges those
# that add coverage into fuzz/corpus/<target>/. A crash, hang (over 10 s
# per input) or property violation leaves its input in
# fuzz/artifacts/<target>/ and makes the script exit 1: add the input to
# fuzz/corpus/<target>/ with the fix, and tests/fuzz_corpus.rs keeps it
# fixed.
#
# Prints per target: wall time, CPU time, executions and the verdict.
set -u
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true

if ! cargo +nightly --version >/dev/null 2>&1 || ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: no nightly toolchain or no cargo-fuzz here: nothing fuzzed." >&2
    echo "fuzz.sh: install them with: rustup toolchain install nightly && cargo install cargo-fuzz" >&2
    echo "fuzz.sh: replaying the saved corpora on stable instead (cargo test --test fuzz_corpus)." >&2
    exec cargo test --test fuzz_corpus
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

# No sanitizer: the parsers under test are safe Rust, and without ASan
# the same minutes run several times more inputs. Debug assertions and
# overflow checks stay on (-a).
flags=(-s none -a)
(cd fuzz && nice -n 19 cargo +nightly fuzz build "${flags[@]}") || exit 1
# The binaries are run directly: `cargo fuzz run` would rebuild percore
# first whenever a source file changed since the build above.
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin=fuzz/target/$host/release

status=0
summary=()
for t in "${targets[@]}"; do
    work=fuzz/target/corpus/$t
    mkdir -p "$work" "fuzz/artifacts/$t"
    log=fuzz/target/fuzz-$t.log
    echo "fuzz.sh: $t for ${seconds}s (log: $log)"
    # -timeout: an input taking over 10 s is a hang; -rss_limit_mb: a
    # runaway allocation is a finding too.
    if nice -n 19 /usr/bin/time -f 'TIME wall=%es cpu=%Us+%Ss' \
        "$bin/$t" "$work" "fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
        verdict=ok
    else
        verdict="FAILED (see $log and fuzz/artifacts/$t/)"
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    times=$(grep '^TIME' "$log" | tail -1 | cut -d' ' -f2-)
    summary+=("$t: ${times:-?} execs=${execs:-?} $verdict")
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$verdict" = ok ]; then
        nice -n 19 "$bin/$t" -merge=1 "fuzz/corpus/$t" "$work" >/dev/null 2>&1 || true
    fi
done
printf '%s\n' "${summary[@]}"
exit $status
