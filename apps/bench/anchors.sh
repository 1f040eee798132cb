# Sourced by the benchmark scripts: makes sure the peer programs in $ANCHORS are built, and
# built from the anchors' sources as they are now.
#
# ensure_anchors WHO PROGRAM...  (WHO names the calling script in messages)
# The sources are ../shared/anchors beside the repository, or $WEFT_ANCHORS_SRC. A digest of
# their contents is kept in $ANCHORS/.sources.sha256; peers built from other sources (or with
# no digest) are rebuilt instead of measured stale. File times would not do: the shared
# folder is written afresh, unchanged, at the start of every session.
ensure_anchors() {
  local who=$1 src program digest
  shift
  src=$repo/../shared/anchors
  [[ -x $src/build ]] || src=${WEFT_ANCHORS_SRC:-}
  if [[ -z $src || ! -x $src/build ]]; then
    for program in "$@"; do
      [[ -x $ANCHORS/$program ]] ||
        { echo "$who: anchors not found beside the repo; set WEFT_ANCHORS_SRC" >&2; exit 1; }
    done
    echo "$who: anchors' sources not found; measuring the peers already in $ANCHORS" >&2
    return 0
  fi
  digest=$(cd "$src" && find . -type f -not -path '*/target/*' -print0 | sort -z |
    xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  local current=1
  for program in "$@"; do [[ -x $ANCHORS/$program ]] || current=0; done
  [[ $(cat "$ANCHORS/.sources.sha256" 2>/dev/null) == "$digest" ]] || current=0
  if ((current == 0)); then
    # The build's progress goes to stderr so that stdout stays the report.
    "$src/build" "$ANCHORS" >&2
    echo "$digest" >"$ANCHORS/.sources.sha256"
  fi
}
