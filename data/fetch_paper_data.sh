#!/usr/bin/env bash
# Fetch the authors' released data (andreanasuto/immigration-llm, MIT licence, commit 924fa4b,
# folder model_performance/data) and verify every file against data/paper_manifest.sha256.
#
#   data/fetch_paper_data.sh                 download into data/paper/ (needs internet)
#   data/fetch_paper_data.sh --dest DIR      download into DIR
#   data/fetch_paper_data.sh --from DIR      verify an existing copy in DIR, download nothing
#
# Then: ./run_all.sh --profile paper   (or --paper-data DIR for a copy elsewhere)
set -euo pipefail

REPO="andreanasuto/immigration-llm"
COMMIT="924fa4b"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MANIFEST="$HERE/paper_manifest.sha256"
DEST="$HERE/paper"
FROM=""

while [ $# -gt 0 ]; do
    case "$1" in
    --dest) DEST="$2"; shift 2 ;;
    --from) FROM="$2"; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_paper_data.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

verify() { # verify DIR against the manifest; prints a summary, fails on any mismatch
    local dir="$1" expected bad=0 missing=0 extra
    [ -d "$dir" ] || { echo "fetch_paper_data.sh: no such folder: $dir" >&2; return 2; }
    expected=$(grep -vc '^#' "$MANIFEST")
    while read -r sum path; do
        if [ ! -f "$dir/$path" ]; then
            echo "missing:  $path" >&2; missing=$((missing + 1))
        elif [ "$(sha256sum "$dir/$path" | cut -c1-64)" != "$sum" ]; then
            echo "changed:  $path" >&2; bad=$((bad + 1))
        fi
    done < <(grep -v '^#' "$MANIFEST" | sed 's/  /\t/' | tr '\t' ' ')
    extra=$(cd "$dir" && find . -type f ! -name SOURCE.md | sed 's|^\./||' | LC_ALL=C sort |
        comm -23 - <(grep -v '^#' "$MANIFEST" | cut -c67- | LC_ALL=C sort) | wc -l)
    if [ "$bad" -gt 0 ] || [ "$missing" -gt 0 ]; then
        echo "fetch_paper_data.sh: $dir: $missing of $expected files missing, $bad changed" >&2
        return 1
    fi
    echo "verified $expected files in $dir against $(basename "$MANIFEST")" \
        "($extra further files not in the manifest)"
}

if [ -n "$FROM" ]; then
    verify "$FROM"
    exit $?
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
url="https://codeload.github.com/$REPO/tar.gz/$COMMIT"
echo "downloading $REPO@$COMMIT ..."
if curl -fsSL "$url" -o "$tmp/repo.tar.gz"; then
    tar -xzf "$tmp/repo.tar.gz" -C "$tmp"
    src="$(find "$tmp" -maxdepth 1 -type d -name 'immigration-llm-*' | head -n 1)"
else
    echo "tarball download failed; trying git" >&2
    git clone --quiet "https://github.com/$REPO.git" "$tmp/repo"
    git -C "$tmp/repo" checkout --quiet "$COMMIT"
    src="$tmp/repo"
fi
[ -d "$src/model_performance/data" ] || {
    echo "fetch_paper_data.sh: model_performance/data not found in $REPO@$COMMIT" >&2
    exit 1
}
verify "$src/model_performance/data"
mkdir -p "$DEST"
cp -R "$src/model_performance/data/." "$DEST/"
echo "paper data in $DEST"
