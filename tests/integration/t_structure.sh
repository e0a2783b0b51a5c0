# The structure of cmd/: no circle between its modules.  A module (foo.c
# with foo.h) that includes, directly or through others, the header of a
# module that includes its own cannot be read, tested or changed apart
# from it; tests/tools/include_graph.sh prints the graph and finds such a
# circle, counting a header shared by several .c files as theirs.
. "$(dirname "$0")/lib.sh"
set -e
out=$(tests/tools/include_graph.sh cmd) || fail "a circle among the modules of cmd/:
$out"
echo "$out" | grep -q '^  cmd_run ' || fail "expected the module cmd_run in the graph:
$out"
echo "$out" | tail -1
