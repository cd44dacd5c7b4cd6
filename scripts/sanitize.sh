#!/usr/bin/env bash
# The whole CTest suite under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer):
#   scripts/sanitize.sh
# The sanitizers and coverage share one instrumented build and one run of the suite
# (build-instrumented/); this is scripts/coverage.sh, which fails on any sanitizer report
# as well as on coverage below its minimum. See there.
exec bash "$(dirname "$0")/coverage.sh" "$@"
