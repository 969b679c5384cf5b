#!/usr/bin/env bash
#  tests/run.sh — what `make check` runs: the Criterion suites (unit and
#  integration of the real binaries), then every tests/*_test.sh and every
#  patterns/*.sh script, each bounded in time. Ends with one line:
#  "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
: "${ZK_BIN:=$PWD/build/bin}" "${ZK_TEST_BIN:=$PWD/build/tests/zkit-tests}"
export ZK_BIN
script_timeout=${ZK_SCRIPT_TIMEOUT:-120}
passed=0
failed=0
failures=()

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== Criterion suites: $ZK_TEST_BIN"
"$ZK_TEST_BIN" ${ZK_CRITERION_ARGS:-} 2>&1 | tee "$log"
summary=$(grep -a 'Synthesis: Tested:' "$log" | tail -n 1)
if [ -n "$summary" ]; then
    #  "[====] Synthesis: Tested: 42 | Passing: 42 | Failing: 0 | Crashing: 0"
    c_pass=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$summary")
    c_fail=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$summary")
    c_crash=$(sed -E 's/.*Crashing: ([0-9]+).*/\1/' <<<"$summary")
    passed=$((passed + c_pass))
    failed=$((failed + c_fail))
    [ "$c_fail" -gt 0 ] && failures+=("criterion: $c_fail failing ($c_crash crashing)")
else
    failed=$((failed + 1))
    failures+=("criterion: no summary (the test binary died)")
fi

for script in tests/*_test.sh patterns/*.sh; do
    [ -f "$script" ] || continue
    case "$(basename "$script")" in lib.sh | demo.sh) continue ;; esac
    echo "== $script"
    start=$(date +%s%N)
    if timeout -k 5 "$script_timeout" bash "$script" >"$log" 2>&1; then
        passed=$((passed + 1))
        printf '[PASS] %s (%d ms)\n' "$script" $(( ($(date +%s%N) - start) / 1000000 ))
        sed 's/^/    /' "$log" | tail -n 15
    else
        rc=$?
        failed=$((failed + 1))
        failures+=("$script (exit $rc)")
        printf '[FAIL] %s (exit %d)\n' "$script" "$rc"
        sed 's/^/    /' "$log" | tail -n 60
    fi
done

echo
for failure in "${failures[@]+"${failures[@]}"}"; do
    echo "FAILED: $failure"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
