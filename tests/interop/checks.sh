# checks.sh -- mailcat's commands against one server, with verified results. Sourced by run.sh.
#
# Every mailcat run is traced (-v) into $WORK/out/NN-NAME.err (stdout in .out); a failing
# check prints the end of that transcript. Every check counts: none is skipped or excused.

PASSED=0 FAILED=0 STEP=0
FAILURES=()
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

# check ID DESCRIPTION FUNCTION ARGS... : runs FUNCTION ARGS; it returns non-zero (with WHY) on failure.
check() {
    local id=$1 desc=$2 t0 ms
    shift 2
    WHY="" MC_OUT=/dev/null MC_ERR=/dev/null
    t0=$(now_ms)
    if "$@"; then
        ms=$(( $(now_ms) - t0 ))
        printf '  PASS  %-34s %s (%d ms)\n' "$id" "$desc" "$ms"
        PASSED=$((PASSED + 1))
        return 0
    fi
    ms=$(( $(now_ms) - t0 ))
    printf '  FAIL  %-34s %s: %s\n' "$id" "$desc" "$WHY"
    FAILED=$((FAILED + 1))
    FAILURES+=("$id: $desc: $WHY")
    if [[ -s $MC_ERR ]]; then
        printf '        %s\n' "$(cat "${MC_ERR%.err}.cmd" 2>/dev/null)"
        printf '        --- stdout:\n'; head -n 20 "$MC_OUT" | sed 's/^/        | /'
        printf '        --- stderr (the -v transcript, last 40 lines; all of it in %s):\n' "$MC_ERR"
        tail -n 40 "$MC_ERR" | sed 's/^/        | /'
    fi
    return 0
}

# ---------------------------------------------------------------------------- test messages
# make_messages DIR TAG : writes the test messages (CRLF line ends, as on the wire) into DIR;
# TAG goes into their subjects and Message-IDs.
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

# ---------------------------------------------------------------------------- incoming (IMAP, POP3)
# The account every incoming check uses: set by incoming_checks.
IN_URL="" IN_USER="" IN_PW=""
mc_in() {   # NAME ARGS... : mailcat with the incoming account, then ARGS (the command)
    local name=$1
    shift
    MAILCAT_PASSWORD=$IN_PW mc "$name" --email "$IN_USER" --incoming "$IN_URL" --ca-file "$TLS/ca.pem" "$@"
}

# subjects_of JSONFILE : the subjects in a `list --json` array (or JSON lines), one a line.
subjects_of() {
    python3 - "$1" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read().strip()
items = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
for m in items:
    print(m.get("subject", ""))
PY
}
# id_of JSONFILE SUBJECT : the id of the message with SUBJECT in a `list --json` array.
id_of() {
    python3 - "$1" "$2" <<'PY'
import json, sys
for m in json.load(open(sys.argv[1], encoding="utf-8")):
    if m.get("subject") == sys.argv[2]:
        print(m.get("id", m.get("uid")))
        break
else:
    sys.exit(1)
PY
}

in_check_ok() {
    mc_in check check
    want_rc 0 && want_out 'All checks passed'
}

# in_list SUBJECT... : `list --json` shows exactly these subjects; over IMAP in this order (UID
# order: the order they were appended), over POP3 in any (the server numbers the messages).
in_list() {
    mc_in list list --json
    want_rc 0 || return 1
    local got want
    got=$(subjects_of "$MC_OUT") || fail_because "list --json is not a JSON array: $(head -c 200 "$MC_OUT")" || return 1
    want=$(printf '%s\n' "$@")
    if [[ $IN_URL == pop3* ]]; then got=$(sort <<<"$got"); want=$(sort <<<"$want"); fi
    [[ $got == "$want" ]] || fail_because "list shows [${got//$'\n'/, }], expected [${want//$'\n'/, }]"
}

# in_fetch DIR SEED... : fetch into a new Maildir DIR stores each SEED (byte-exact but for
# LF line ends) and nothing else; a second fetch adds nothing.
in_fetch() {
    local dir=$1 seed f found
    shift
    mc_in fetch fetch --to "maildir:$dir"
    want_rc 0 || return 1
    local files=()
    mapfile -t files < <(find "$dir/new" "$dir/cur" -type f 2>/dev/null | sort)
    (( ${#files[@]} == $# )) || fail_because "$dir holds ${#files[@]} messages, expected $#" || return 1
    for seed in "$@"; do
        found=""
        for f in "${files[@]}"; do
            if cmp -s "$f" <(lf "$seed"); then found=$f; break; fi
        done
        [[ -n $found ]] || fail_because "no file in $dir has the bytes of $seed (with LF line ends, as Maildir keeps them)" || return 1
    done
    mc_in fetch-again fetch --to "maildir:$dir"
    want_rc 0 || return 1
    mapfile -t files < <(find "$dir/new" "$dir/cur" -type f 2>/dev/null | sort)
    (( ${#files[@]} == $# )) || fail_because "the second fetch stored $(( ${#files[@]} - $# )) more message(s) in $dir"
}

# in_cat SUBJECT SEED : `cat ID` prints SEED byte for byte (as the server stores it: CRLF).
in_cat() {
    local subject=$1 seed=$2 id
    mc_in list-for-cat list --json
    want_rc 0 || return 1
    id=$(id_of "$MC_OUT" "$subject") || fail_because "no message '$subject' in list --json" || return 1
    mc_in cat cat "$id"
    want_rc 0 || return 1
    cmp -s "$MC_OUT" "$seed" || fail_because "cat $id differs from $seed: $(cmp "$MC_OUT" "$seed" 2>&1 | head -1)"
}

in_mailboxes() {
    mc_in mailboxes mailboxes
    want_rc 0 && want_out '^INBOX'
}

in_wrong_password() {
    local saved=$IN_PW
    IN_PW=not-the-password
    mc_in wrong-password list
    IN_PW=$saved
    want_rc 77
}

# in_watch APPEND-FUNCTION SEED SUBJECT : `watch --json` started on a mailbox with messages
# prints nothing for them, then exactly one line for SEED once APPEND-FUNCTION SEED put it there.
in_watch() {
    local append=$1 seed=$2 subject=$3 pid i got
    STEP=$((STEP + 1))
    local p
    p=$WORK/out/$(printf '%03d' "$STEP")-watch
    MC_OUT=$p.out MC_ERR=$p.err
    printf '$ mailcat -v --email %s --incoming %s --ca-file %s watch --json\n' "$IN_USER" "$IN_URL" "$TLS/ca.pem" >"$p.cmd"
    MAILCAT_PASSWORD=$IN_PW timeout 60 "$MAILCAT" -v --email "$IN_USER" --incoming "$IN_URL" \
        --ca-file "$TLS/ca.pem" watch --json </dev/null >"$MC_OUT" 2>"$MC_ERR" &
    pid=$!
    # Ready when it has sent the IDLE command (the trace shows it; not the IDLE capability).
    local idle='^C: [A-Za-z0-9]+ IDLE'
    for i in $(seq 100); do grep -qsE "$idle" "$MC_ERR" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if ! grep -qsE "$idle" "$MC_ERR"; then
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
        fail_because "watch did not reach IDLE within 10 s"; return 1
    fi
    sleep 0.5
    "$append" "$seed" >"$p.append" 2>&1 || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fail_because "appending $seed failed: $(cat "$p.append")"; return 1; }
    for i in $(seq 150); do grep -qF "$subject" "$MC_OUT" && break; sleep 0.1; done
    sleep 0.5   # anything printed after the new message would show up now
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    got=$(subjects_of "$MC_OUT" 2>/dev/null) || fail_because "watch --json printed something other than JSON lines: $(head -c 300 "$MC_OUT")" || return 1
    [[ $got == "$subject" ]] || fail_because "watch printed [${got//$'\n'/, }], expected only [$subject]"
}

# incoming_checks SERVER LABEL URL USER PASSWORD SEED... : the read-only checks on one endpoint
# (LABEL names it in the check ids). The mailbox holds exactly the SEEDs (files, in the order
# they were appended; the second one is the dot/8-bit message); subjects are read from them.
incoming_checks() {
    local server=$1 label=$2
    IN_URL=$3 IN_USER=$4 IN_PW=$5
    shift 5
    local subjects=() s
    for s in "$@"; do subjects+=("$(sed -n 's/^Subject: //p' "$s" | head -1 | tr -d '\r')"); done
    echo "  -- $IN_URL"
    check "$server:$label:check" "mailcat check" in_check_ok
    check "$server:$label:list" "list shows the ${#subjects[@]} messages" in_list "${subjects[@]}"
    check "$server:$label:fetch" "fetch stores them byte-exact, again adds none" in_fetch "$WORK/$server/fetched-$label" "$@"
    check "$server:$label:cat" "cat prints the dot/8-bit message byte for byte" in_cat "${subjects[1]}" "$2"
    case $IN_URL in imap*) check "$server:$label:mailboxes" "mailboxes lists INBOX" in_mailboxes ;; esac
}

# in_fetch_delete DIR COUNT : fetch --delete stores COUNT messages in a new Maildir DIR and
# leaves the mailbox empty (list shows nothing).
in_fetch_delete() {
    local dir=$1 count=$2 files=()
    mc_in fetch-delete fetch --to "maildir:$dir" --delete
    want_rc 0 || return 1
    mapfile -t files < <(find "$dir/new" "$dir/cur" -type f 2>/dev/null | sort)
    (( ${#files[@]} == count )) || fail_because "$dir holds ${#files[@]} messages, expected $count" || return 1
    mc_in list-after-delete list --json
    want_rc 0 || return 1
    [[ -z $(subjects_of "$MC_OUT") ]] || fail_because "messages remain on the server after fetch --delete: $(subjects_of "$MC_OUT" | tr '\n' ',')"
}

# in_alert TEXT : the server sends an IMAP [ALERT] with TEXT at login; mailcat shows it to the
# user (RFC 3501 7.1: MUST be presented), on stderr outside the -v trace (S:/C: lines).
in_alert() {
    mc_in alert list
    want_rc 0 || return 1
    grep -q "S: .*\[ALERT\].*$1" "$MC_ERR" || fail_because "the server sent no [ALERT] with '$1' (see the trace)" || return 1
    grep -v '^[SC]: ' "$MC_ERR" | grep -qF "$1" || fail_because "the server's [ALERT] '$1' was not shown (only in the -v trace)"
}
