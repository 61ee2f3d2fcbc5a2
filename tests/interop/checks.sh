# checks.sh -- mailcat's commands against one server, with verified results. Sourced by run.sh.
#
# Every mailcat run is traced (-v) into $WORK/out/NN-NAME.err (stdout in .out); a failing
# check prints the end of that transcript. A check whose id is in EXPECT_FIX_PENDING (run.sh)
# warns loudly instead of failing; when it passes it says so, so the id can be removed.

PASSED=0 FAILED=0 WARNED=0 STEP=0
FAILURES=() WARNINGS=()
MC_TIMEOUT=${MAILCAT_INTEROP_COMMAND_TIMEOUT:-120}

# mc NAME ARGS... : runs "mailcat -v ARGS" (stdin from $MC_STDIN or /dev/null); sets MC_RC,
# MC_OUT and MC_ERR (file names). The password comes from MAILCAT_PASSWORD (set per check).
mc() {
    local name=$1
    shift
    STEP=$((STEP + 1))
    local p
    p=$WORK/out/$(printf '%03d' "$STEP")-$name
    MC_OUT=$p.out MC_ERR=$p.err
    printf '$ mailcat -v' >"$p.cmd"; printf ' %q' "$@" >>"$p.cmd"; echo >>"$p.cmd"
    set +e
    timeout --kill-after=5 "$MC_TIMEOUT" "$MAILCAT" -v "$@" <"${MC_STDIN:-/dev/null}" >"$MC_OUT" 2>"$MC_ERR"
    MC_RC=$?
    set -e
    [[ $MC_RC != 124 ]] || echo "interop: mailcat did not finish within $MC_TIMEOUT s (killed)" >>"$MC_ERR"
}

# The reason a check failed (set by want/fail_because); shown with the transcript.
WHY=""
fail_because() { WHY=$*; return 1; }
# want_rc CODE : the last mailcat run exited with CODE.
want_rc() {
    [[ $MC_RC == "$1" ]] || fail_because "mailcat exited $MC_RC, expected $1 ($(cat "${MC_OUT%.out}.cmd"))"
}
# want_out REGEX : the last run's stdout matches (grep -E).
want_out() { grep -qE -- "$1" "$MC_OUT" || fail_because "stdout lacks /$1/"; }

is_pending() { local x; for x in "${EXPECT_FIX_PENDING[@]}"; do [[ $x == "$1" ]] && return 0; done; return 1; }

# check ID DESCRIPTION FUNCTION ARGS... : runs FUNCTION ARGS; it returns non-zero (with WHY) on failure.
check() {
    local id=$1 desc=$2 t0 ms
    shift 2
    WHY="" MC_OUT=/dev/null MC_ERR=/dev/null
    t0=$(now_ms)
    if "$@"; then
        ms=$(( $(now_ms) - t0 ))
        if is_pending "$id"; then
            printf '  PASS  %-34s %s (%d ms) -- and it is listed in EXPECT_FIX_PENDING: remove "%s" from tests/interop/run.sh\n' "$id" "$desc" "$ms" "${id#*:}"
        else
            printf '  PASS  %-34s %s (%d ms)\n' "$id" "$desc" "$ms"
        fi
        PASSED=$((PASSED + 1))
        return 0
    fi
    ms=$(( $(now_ms) - t0 ))
    if is_pending "$id"; then
        printf '  WARN  %-34s %s: %s\n' "$id" "$desc" "$WHY"
        printf '        ^^^ KNOWN, FIX PENDING (EXPECT_FIX_PENDING in tests/interop/run.sh): not counted as a failure\n'
        WARNED=$((WARNED + 1))
        WARNINGS+=("$id: $desc: $WHY")
    else
        printf '  FAIL  %-34s %s: %s\n' "$id" "$desc" "$WHY"
        FAILED=$((FAILED + 1))
        FAILURES+=("$id: $desc: $WHY")
    fi
    if [[ -s $MC_ERR ]]; then
        printf '        %s\n' "$(cat "${MC_ERR%.err}.cmd" 2>/dev/null)"
        printf '        --- stdout:\n'; head -n 20 "$MC_OUT" | sed 's/^/        | /'
        printf '        --- stderr (the -v transcript, last 40 lines; all of it in %s):\n' "$MC_ERR"
        tail -n 40 "$MC_ERR" | sed 's/^/        | /'
    fi
    return 0
}

# ---------------------------------------------------------------------------- test messages
# make_messages DIR : writes the test messages (CRLF line ends, as on the wire) into DIR.
# 1.eml plain; 2.eml dot lines, 8-bit UTF-8 body, a 990-octet line, tabs; 3.eml ~300 KB.
make_messages() {
    local d=$1 tag=$2
    mkdir -p "$d"
    python3 - "$d" "$tag" <<'EOF'
import base64, hashlib, sys
d, tag = sys.argv[1], sys.argv[2]
def write(name, headers, body_lines):
    lines = headers + [""] + body_lines
    open(f"{d}/{name}", "wb").write(("\r\n".join(lines) + "\r\n").encode())
common = lambda n, subj: [
    "From: Alice <alice@example.test>", "To: Alice <alice@example.test>",
    f"Subject: {subj}", "Date: Thu, 26 Nov 2026 07:12:0%d +0000" % n,
    f"Message-ID: <interop-{tag}-{n}@example.test>", "MIME-Version: 1.0"]
write("1.eml", common(1, f"interop {tag} plain") + ["Content-Type: text/plain; charset=us-ascii"],
      ["Hello from the interop suite.", "", "Second paragraph."])
write("2.eml", common(2, f"interop {tag} dots and 8bit") +
      ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
      [".", "..two dots", ".leading dot", "Gr\u00fc\u00dfe, \u65e5\u672c, \u00e9t\u00e9",
       "\ttab-indented", "x" * 990, "trailing spaces   ", "last line"])
blob = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(7000))
b64 = base64.encodebytes(blob).decode().splitlines()
write("3.eml", common(3, f"interop {tag} large") +
      ["Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64"], b64)
EOF
}

# lf FILE : FILE's bytes with CRLF turned into LF.
lf() { sed 's/\r$//' "$1"; }
# same_message STORED SEED : STORED is SEED byte for byte, either as sent (CRLF) or with LF
# line ends (Maildir convention); says which.
same_message() {
    if cmp -s "$1" "$2"; then return 0; fi
    if cmp -s "$1" <(lf "$2"); then return 0; fi
    fail_because "$1 differs from $2 (neither the same bytes nor the same with LF line ends): $(cmp "$1" "$2" 2>&1 | head -1)"
}
