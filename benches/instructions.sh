#!/usr/bin/env bash
# Instructions per operation, leakcheck against plain tokio/std, counted by
# callgrind: steady where wall clock on a shared machine is not.
#
# Each figure is the difference between two runs of one benchmark with
# different sample counts, divided by the extra iterations, so the setup
# (runtime, divan, thread start) cancels out.
#
#   bash benches/instructions.sh        # needs valgrind; about 3 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }

bench=$(cargo bench -p leakcheck-benches --bench spawn --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*spawn-[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bench" ] || { echo "could not build benches/spawn.rs" >&2; exit 1; }

# instructions NAME SAMPLES SIZE: total instructions of one run.
instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" "$1" --bench \
        --sample-count "$2" --sample-size "$3" 2>&1 |
        sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}

# per_op NAME SAMPLES SIZE OPS_PER_ITERATION
per_op() {
    local one two
    one=$(instructions "$1" "$2" "$3")
    two=$(instructions "$1" $(($2 * 2)) "$3")
    echo $(((two - one) / ($2 * $3 * $4)))
}

row() { # row LABEL PLAIN LEAKCHECK SAMPLES SIZE OPS
    local plain tracked
    plain=$(per_op "$2" "$4" "$5" "$6")
    tracked=$(per_op "$3" "$4" "$5" "$6")
    printf '| %s | %s | %s (+%s) | %s.%02d× |\n' "$1" "$plain" "$tracked" $((tracked - plain)) \
        $((tracked / plain)) $(((tracked * 100 / plain) % 100))
}

echo "| benchmark | plain | leakcheck | ratio |"
echo "|---|---|---|---|"
row "1: spawn + await one, current-thread" spawn_await_one::tokio spawn_await_one::leakcheck 100 100 1
row "2: spawn 100k then join, current-thread, per task" \
    spawn_100k_then_join::tokio_current_thread spawn_100k_then_join::leakcheck_current_thread 2 1 100000
row "poll path, per yield" poll_1000_yields::tokio poll_1000_yields::leakcheck 10 1 1000
row "4: thread::spawn + join (user space only)" \
    blocking_and_threads::std_thread_spawn blocking_and_threads::leakcheck_thread_spawn 100 1 1
row "4: spawn_blocking + await (user space only)" \
    blocking_and_threads::tokio_spawn_blocking blocking_and_threads::leakcheck_spawn_blocking 100 1 1
