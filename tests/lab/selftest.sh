#!/usr/bin/env bash
# selftest.sh -- exercise lab.sh's life cycle the way CI and developers will use it, with
# timings: cold up, check, idempotent up, down (nothing left), warm up, kill -9 of every
# server process then up, kill -9 of both masters with frozen children then down (the
# orphans must be swept) and up, a second lab in another directory at the same time (its
# own free base port, the first lab untouched), and down --purge. Uses throw-away
# directories, never the default one. Ends with "N passed, N failed".
#
# Usage: tests/lab/selftest.sh             (as root, with the packages installed)
set -uo pipefail
LAB=$(cd "$(dirname "$0")" && pwd -P)/lab.sh
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "PASS  $*"; }
bad() { fail=$((fail + 1)); echo "FAIL  $*"; }
# t CMD...: run quietly, LAST_MS = wall time; on failure show the output.
t() {
    local s rc out
    s=$(date +%s%3N); out=$("$@" 2>&1); rc=$?; LAST_MS=$(( $(date +%s%3N) - s ))
    (( rc == 0 )) || tail -n 15 <<<"$out" | while IFS= read -r l; do echo "      | $l"; done
    return $rc
}
verdict() { if "${@:3}"; then ok "$1"; else bad "$2"; fi; }   # OK-MSG BAD-MSG TEST...
pgids() { cat "$1"/state/*.pgid 2>/dev/null | tr '\n' ' '; }
members() {   # PGIDS -> PIDs of Dovecot/Postfix processes in those process groups
    local d pgid exe
    for d in /proc/[0-9]*; do
        exe=$(readlink "$d/exe" 2>/dev/null) || continue
        case $exe in /usr/lib/dovecot/*|/usr/sbin/dovecot|/usr/lib/postfix/*) ;; *) continue ;; esac
        pgid=$(awk '{sub(/.*\) /,""); print $3}' "$d/stat" 2>/dev/null)
        [[ " $1 " == *" $pgid "* ]] && echo "${d#/proc/}"
    done
}
checked() {   # DIR WHAT
    local out
    if out=$("$LAB" check "$1" 2>&1); then ok "check after $2: $(tail -1 <<<"$out")"
    else bad "check after $2"; grep -v '^PASS' <<<"$out" | sed 's/^/      | /'; fi
}

A=$(mktemp -d /tmp/mailcat-lab-selftest-a.XXXXXX)
B=$(mktemp -d /tmp/mailcat-lab-selftest-b.XXXXXX)
echo "== lab A: $A"
if t "$LAB" up "$A"; then ok "cold up (${LAST_MS} ms)"; else bad "cold up"; fi
checked "$A" "cold up"
if t "$LAB" check "$A"; then ok "check (${LAST_MS} ms)"; else bad "check"; fi
if t "$LAB" up "$A"; then ok "up while running (${LAST_MS} ms)"; else bad "up while running"; fi
g=$(pgids "$A")
if t "$LAB" down "$A"; then ok "down (${LAST_MS} ms)"; else bad "down"; fi
n=$(members "$g" | wc -l); verdict "no process left after down" "$n process(es) left after down" test "$n" -eq 0
if t "$LAB" up "$A"; then ok "warm up, same dir (${LAST_MS} ms)"; else bad "warm up"; fi
checked "$A" "warm up"

mapfile -t pids < <(members "$(pgids "$A")")
kill -KILL "${pids[@]}" 2>/dev/null; sleep 0.3
echo "      killed -9 all ${#pids[@]} server processes of A"
if t "$LAB" up "$A"; then ok "up after kill -9 of everything (${LAST_MS} ms)"; else bad "up after kill -9"; fi
checked "$A" "kill -9 recovery"

dm=$(cat "$A/dovecot/run/master.pid"); pm=$(cat "$A/postfix/spool/pid/master.pid")
g=$(pgids "$A")
mapfile -t kids < <(members "$g" | grep -vxF -e "$dm" -e "$pm")
kill -STOP "${kids[@]}" 2>/dev/null; kill -KILL "$dm" "$pm"; sleep 0.3
echo "      froze ${#kids[@]} children, killed -9 both masters of A"
if t "$LAB" up "$A"; then ok "up with orphaned children holding the ports (${LAST_MS} ms)"; else bad "up with orphans"; fi
n=$(members "$g" | wc -l); verdict "orphans swept by up" "$n orphan(s) left" test "$n" -eq 0
checked "$A" "orphan recovery"
dm=$(cat "$A/dovecot/run/master.pid"); pm=$(cat "$A/postfix/spool/pid/master.pid"); g=$(pgids "$A")
mapfile -t kids < <(members "$g" | grep -vxF -e "$dm" -e "$pm")
kill -STOP "${kids[@]}" 2>/dev/null; kill -KILL "$dm" "$pm"; sleep 0.3
if t "$LAB" down "$A"; then ok "down after the masters were killed (${LAST_MS} ms)"; else bad "down after masters killed"; fi
n=$(members "$g" | wc -l); verdict "orphans swept by down" "$n orphan(s) left" test "$n" -eq 0
if t "$LAB" up "$A"; then ok "up again (${LAST_MS} ms)"; else bad "up again"; fi

echo "== lab B next to A: $B"
if t "$LAB" up "$B"; then ok "second lab up (${LAST_MS} ms)"; else bad "second lab up"; fi
ba=$(cat "$A/state/base-port" 2>/dev/null); bb=$(cat "$B/state/base-port" 2>/dev/null)
verdict "distinct base ports: A $ba, B $bb" "base ports A '$ba' B '$bb'" test -n "$ba" -a -n "$bb" -a "$ba" != "$bb"
checked "$B" "second lab"
if t "$LAB" down "$B" --purge; then ok "B down --purge (${LAST_MS} ms)"; else bad "B down --purge"; fi
verdict "B purged" "B still exists" test ! -e "$B"
checked "$A" "B came and went"

g=$(pgids "$A")
if t "$LAB" down "$A" --purge && [[ ! -e $A ]]; then ok "A down --purge (${LAST_MS} ms)"; else bad "A down --purge"; fi
n=$(members "$g" | wc -l); verdict "nothing left at the end" "$n process(es) left at the end" test "$n" -eq 0
echo "$pass passed, $fail failed"
(( fail == 0 ))
