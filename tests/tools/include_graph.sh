#!/usr/bin/env bash
# include_graph.sh [DIR] - the include graph of one folder (default cmd/):
# each file and the headers of that folder it includes, then the same
# graph between modules, and whether it has a cycle.  Exits 1 on a cycle.
#
# A module is foo.c and foo.h together ("foo").  A header without a .c of
# its own belongs to the files that define the functions it declares: a
# header shared by three .c files, each declaring its functions for the
# others, makes each of them include the other two, which is a circle of
# calls even when no file includes another's own header.  A header that
# declares no function (types only) is a module of its own.  Headers of
# other folders (#include "../engine/engine.h") are not in the graph.
#
# Run from anywhere: tests/tools/include_graph.sh cmd
set -eu
cd "$(dirname "$0")/../.."
dir=${1:-cmd}
[ -d "$dir" ] || { echo "include_graph.sh: no folder $dir" >&2; exit 2; }

includes() {    # FILE: the headers of $dir it includes, sorted
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"/]*\.h\)".*/\1/p' "$1" |
        while IFS= read -r h; do [ -e "$dir/$h" ] && echo "$h"; done | sort -u
}

declared() {    # HEADER: names of the functions it declares (at column 0)
    sed -e 's://.*$::' "$1" |
        grep -E '^[A-Za-z_][^#]*[^A-Za-z0-9_][A-Za-z_][A-Za-z0-9_]*\(' |
        grep -Ev '^(typedef|#|static)' |
        sed 's/^\([^(]*[^A-Za-z0-9_(]\)\{0,1\}\([A-Za-z_][A-Za-z0-9_]*\)(.*/\2/' | sort -u
}

owners() {      # HEADER: the module(s) it belongs to
    local h=$1 m=${1%.h} names f n found=""
    if [ -e "$dir/$m.c" ]; then
        echo "$m"
        return
    fi
    names=$(declared "$dir/$h")
    for f in "$dir"/*.c; do
        for n in $names; do
            if grep -E "^[A-Za-z_][^;]*[^A-Za-z0-9_]$n\(" "$f" | grep -Ev '^static|;[[:space:]]*$' |
                grep -q .; then
                found="$found $(basename "$f" .c)"
                break
            fi
        done
    done
    [ -n "$found" ] && echo $found | tr ' ' '\n' || echo "$m"
}

echo "files of $dir/ -> the headers of $dir/ they include"
for f in "$dir"/*.c "$dir"/*.h; do
    [ -e "$f" ] || continue
    printf '  %-16s -> %s\n' "$(basename "$f")" "$(includes "$f" | tr '\n' ' ')"
done

declare -A own
for h in "$dir"/*.h; do
    [ -e "$h" ] || continue
    b=$(basename "$h")
    own[$b]=$(owners "$b" | tr '\n' ' ')
    [ "${own[$b]% }" = "${b%.h}" ] ||
        echo "  ($b has no ${b%.h}.c: it belongs to ${own[$b]% })"
done

echo "modules (foo.c + foo.h) -> the modules whose headers they include"
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
declare -A deps
for f in "$dir"/*.c "$dir"/*.h; do
    [ -e "$f" ] || continue
    b=$(basename "$f")
    case "$b" in
        *.c) mods=${b%.c} ;;
        *.h) mods=${own[$b]} ;;
    esac
    for m in $mods; do
        echo "$m $m" >> "$edges"
        for h in $(includes "$f"); do
            for o in ${own[$h]}; do
                [ "$o" = "$m" ] && continue
                echo "$m $o" >> "$edges"
                deps[$m]="${deps[$m]:-} $o"
            done
        done
    done
done
for m in $(cut -d' ' -f1 "$edges" | sort -u); do
    printf '  %-16s -> %s\n' "$m" "$(echo ${deps[$m]:-} | tr ' ' '\n' | sort -u | tr '\n' ' ')"
done

if loop=$(tsort "$edges" 2>&1 >/dev/null) && [ -z "$loop" ]; then
    echo "no cycle among the modules of $dir/"
    exit 0
fi
# tsort names the modules of each loop it finds, one a line
echo "CYCLE among the modules of $dir/:" $(echo "$loop" | sed -n 's/^tsort: \([^ ]*\)$/\1/p' |
    awk '!seen[$0]++')
exit 1
