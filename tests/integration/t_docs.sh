# The documentation is the product's contract, so it must stand on its own:
# every link in README.md and docs/*.md names a file of the repository
# (and, with #anchor, a heading of it), every repository path the text
# names in backquotes exists, and nothing points outside the repository.
. "$(dirname "$0")/lib.sh"
set -e

# GitHub's anchor for a heading: lower case, punctuation dropped, blanks
# to hyphens
slug() {
    printf '%s\n' "$1" | tr 'A-Z' 'a-z' | sed -e 's/[^a-z0-9 _-]//g' -e 's/ /-/g'
}
anchors() {     # FILE: the anchors of its headings, one a line
    sed -n 's/^#\{1,6\} \(.*\)/\1/p' "$1" | while IFS= read -r h; do slug "$h"; done
}

docs=(README.md docs/*.md)
bad=""
links=0
for f in "${docs[@]}"; do
    dir=$(dirname "$f")
    while IFS= read -r target; do
        links=$((links + 1))
        case "$target" in
            http://* | https://* | mailto:*) continue ;;
        esac
        path=${target%%#*}
        anchor=""
        [ "$path" = "$target" ] || anchor=${target#*#}
        file=$f
        [ -z "$path" ] || file="$dir/$path"
        if [ ! -e "$file" ]; then
            bad="$bad
$f: link to $target: expected a file of the repository, $file does not exist"
        elif [ -n "$anchor" ] && ! anchors "$file" | grep -qx -- "$anchor"; then
            bad="$bad
$f: link to $target: expected a heading '#$anchor' in $file"
        fi
    done < <(grep -o '\]([^)]*)' "$f" | sed 's/^](\(.*\))$/\1/')
    # paths in backquotes that start at a top folder of the repository
    while IFS= read -r p; do
        case "$p" in *'<'* | *'*'* | *'{'* | *'...'* | *' '*) continue ;; esac
        [ -e "$p" ] || bad="$bad
$f: names \`$p\`: expected it in the repository"
    done < <(grep -o '`\(cmd\|config\|connectors\|docs\|engine\|packaging\|tests\)/[^`]*`' "$f" |
             tr -d '`' | sed 's/:[0-9]*$//')
done
[ -z "$bad" ] || fail "documentation that does not stand on its own:$bad"
[ "$links" -gt 20 ] || fail "expected over 20 links in ${docs[*]}, found $links"

# nothing names a file outside the repository
out=$(grep -rnI --exclude-dir=.git --exclude-dir=build -e 'SPEC\.md' -e '\.\./shared' . |
      grep -v '^./tests/integration/t_docs.sh:' || :)
[ -z "$out" ] || fail "expected no reference outside the repository, found:
$out"
echo "$links links in ${#docs[@]} documents, all inside the repository"
