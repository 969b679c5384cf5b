#!/usr/bin/env bash
#  `make check SANITIZE=1` only: fail when AddressSanitizer, LeakSanitizer
#  or UBSan wrote a report during the run (the Makefile points their
#  log_path into build/asan/sanitizer/ and empties it before the run).
#  A leak in a Criterion test process does not fail its test (LeakSanitizer
#  reports after the result was sent): this is where it is caught. In a
#  plain build there is nothing to check.
set -euo pipefail
dir=$(sed -n 's/.*log_path=\([^:]*\)\/asan.*/\1/p' <<<"${ASAN_OPTIONS:-}")
if [ -z "$dir" ]; then
    echo "sanitizer_reports_test: not a sanitizer run (make check SANITIZE=1): nothing to check"
    exit 0
fi
shopt -s nullglob
#  A file that only lists the suppressions used is no finding.
reports=()
for file in "$dir"/asan.* "$dir"/ubsan.*; do
    grep -qE 'ERROR: |runtime error' "$file" && reports+=("$file")
done
if [ ${#reports[@]} -eq 0 ]; then
    echo "sanitizer_reports_test: no sanitizer report in $dir"
    exit 0
fi
for report in "${reports[@]}"; do
    echo "== $report"
    grep -E 'ERROR|SUMMARY|runtime error| #[0-9]+ .* in (zk_|s_|tu_|main)' "$report" | head -n 12
done
echo "sanitizer_reports_test: ${#reports[@]} report(s) in $dir" >&2
exit 1
