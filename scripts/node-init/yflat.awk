# yflat.awk: flatten a small YAML subset into "path<TAB>value" records, like tiny-cloud's
# `yx` helper does for its own lookups. Runs under busybox awk inside the node image.
#
# Understood: block mappings, block sequences (also "compact" ones at the parent key's
# indent), `- key: value` items, plain, 'single' and "double" quoted scalars (\n \t \" \\
# escapes), block scalars (| |- |+ > >-; `>` is kept literal, not folded), flow sequences
# of scalars on one line ([a, "b c"]), empty {} and [], comments on their own line and
# after plain scalars. NOT understood: anchors/aliases, tags, multi-line flow collections,
# multi-line plain or quoted scalars, multiple documents, keys with spaces or quotes.
# That covers the #cloud-config pxelab renders; anything else is best effort.
#
# Output value encoding: backslash -> \\, newline -> \n, tab -> \t (one record per line).
# Sequence items get their index (0, 1, …) as path component: write_files/0/path.

function esc(s) {
    gsub(/\\/, "\\\\", s)
    gsub(/\t/, "\\t", s)
    gsub(/\n/, "\\n", s)
    return s
}

function emit(path, val) {
    sub(/^\//, "", path)
    printf "%s\t%s\n", path, esc(val)
}

function dq(s,    out, i, c, n) {
    # s is the text between double quotes
    out = ""
    n = length(s)
    for (i = 1; i <= n; i++) {
        c = substr(s, i, 1)
        if (c == "\\" && i < n) {
            i++
            c = substr(s, i, 1)
            if (c == "n") c = "\n"
            else if (c == "t") c = "\t"
            else if (c == "r") c = "\r"
            else if (c == "0") c = ""
        }
        out = out c
    }
    return out
}

# A scalar as written after "key:" or "- " (already trimmed).
function scalar(s,    q) {
    if (s ~ /^"/) {
        q = s
        sub(/^"/, "", q)
        sub(/"[ \t]*(#.*)?$/, "", q)
        return dq(q)
    }
    if (s ~ /^'/) {
        q = s
        sub(/^'/, "", q)
        sub(/'[ \t]*(#.*)?$/, "", q)
        gsub(/''/, "'", q)
        return q
    }
    sub(/[ \t]+#.*$/, "", s)
    sub(/[ \t]+$/, "", s)
    if (s == "~" || s == "null") return ""
    return s
}

# Splits a one-line flow sequence "[a, b]" into path/0, path/1, …
function flowseq(path, s,    body, n, parts, i, item) {
    body = s
    sub(/^\[/, "", body)
    sub(/\][ \t]*(#.*)?$/, "", body)
    if (body ~ /^[ \t]*$/) return
    n = split(body, parts, ",")
    for (i = 1; i <= n; i++) {
        item = parts[i]
        sub(/^[ \t]+/, "", item)
        sub(/[ \t]+$/, "", item)
        emit(path "/" (i - 1), scalar(item))
    }
}

# Handles "value" for an entry at path whose key sits at indent ind.
function value(path, v, ind) {
    if (v ~ /^[|>][-+0-9]*[ \t]*(#.*)?$/) {
        blk_path = path
        blk_parent = ind
        blk_ind = -1
        blk_text = ""
        blk_chomp = (v ~ /^.-/) ? "strip" : ((v ~ /^.\+/) ? "keep" : "clip")
        blk_blank = ""
        blk_n = 0
        inblock = 1
        return
    }
    if (v == "") {
        pend_path = path
        pend_ind = ind
        pending = 1
        return
    }
    if (v ~ /^\[/) { flowseq(path, v); return }
    if (v ~ /^\{[ \t]*\}/) return
    emit(path, scalar(v))
}

function end_block() {
    if (blk_chomp == "keep") blk_text = blk_text blk_blank
    else if (blk_chomp == "clip" && blk_text != "") blk_text = blk_text "\n"
    emit(blk_path, blk_text)
    inblock = 0
}

function push(ind, path, type) {
    sp++
    st_ind[sp] = ind
    st_path[sp] = path
    st_type[sp] = type
    st_n[sp] = 0
}

# A "key: value" or a bare key at indent ind, inside the map frame on top.
function mapentry(c, ind,    k, v) {
    k = c
    sub(/:([ \t].*)?$/, "", k)
    v = c
    if (index(v, ": ") > 0 || index(v, ":\t") > 0) {
        v = substr(v, length(k) + 2)
        sub(/^[ \t]+/, "", v)
    } else {
        v = ""
    }
    value(st_path[sp] "/" k, v, ind)
}

function iskey(c) {
    return c ~ /^[A-Za-z0-9_.\/-]+:([ \t]|$)/
}

function line(raw,    ind, c, idx, rest, off) {
    c = raw
    sub(/^ +/, "", c)
    ind = length(raw) - length(c)
    sub(/[ \t\r]+$/, "", c)

    if (pending) {
        pending = 0
        if (c ~ /^- / || c == "-") {
            if (ind >= pend_ind) { push(ind, pend_path, "seq") }
            else emit(pend_path, "")
        } else if (ind > pend_ind && iskey(c)) {
            push(ind, pend_path, "map")
        } else {
            emit(pend_path, "")
        }
    }

    # leave frames the line is outside of
    while (sp > 1 && (st_ind[sp] > ind || (st_ind[sp] == ind && st_type[sp] == "seq" && c !~ /^-( |$)/))) sp--

    if (c ~ /^-( |$)/) {
        if (st_type[sp] != "seq") { dropped++; return }
        idx = st_n[sp]++
        rest = c
        sub(/^-[ ]*/, "", rest)
        off = length(c) - length(rest)
        if (rest == "") {
            pend_path = st_path[sp] "/" idx
            pend_ind = ind
            pending = 1
        } else if (iskey(rest)) {
            push(ind + off, st_path[sp] "/" idx, "map")
            mapentry(rest, ind + off)
        } else {
            value(st_path[sp] "/" idx, rest, ind)
        }
        return
    }
    if (iskey(c) && st_type[sp] == "map") {
        mapentry(c, ind)
        return
    }
    dropped++
}

BEGIN {
    sp = 0
    push(0, "", "map")
    inblock = 0
    pending = 0
    dropped = 0
}

{
    raw = $0
    sub(/\r$/, "", raw)
    if (inblock) {
        t = raw
        sub(/^ +/, "", t)
        ti = length(raw) - length(t)
        if (t == "") { blk_blank = blk_blank "\n"; next }
        if (blk_ind < 0) {
            if (ti <= blk_parent) { end_block() }
            else blk_ind = ti
        }
        if (inblock) {
            if (ti >= blk_ind) {
                if (blk_n > 0) blk_text = blk_text "\n"
                blk_text = blk_text blk_blank substr(raw, blk_ind + 1)
                blk_blank = ""
                blk_n++
                next
            }
            end_block()
        }
    }
    if (raw ~ /^[ \t]*#/ || raw ~ /^[ \t]*$/ || raw ~ /^---/ || raw ~ /^\.\.\./) next
    line(raw)
}

END {
    if (inblock) end_block()
    if (pending) emit(pend_path, "")
    if (dropped > 0) printf "yflat: %d line(s) not understood\n", dropped > "/dev/stderr"
}
