# kill -9 at random moments and restart: Redis and the results equal an
# uninterrupted run's (crash.sh).  `make soak` runs it with 20 kills.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/crash.sh"
set -e
crash_test 1 "${CRASH_KILLS:-10}"
crash_test 4 "${CRASH_KILLS:-10}"
