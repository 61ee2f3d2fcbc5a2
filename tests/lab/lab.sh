#!/usr/bin/env bash
# lab.sh -- the mailcat lab: real Dovecot + Postfix on loopback for end-to-end tests.
#
# Usage: tests/lab/lab.sh COMMAND [DIR] [options]
#
#   install               apt-get install the servers and tools (skipped when all are present)
#   up [DIR]              create certs, users, configs under DIR and start both servers;
#                         waits until every endpoint answers over verified TLS. Idempotent.
#   down [DIR] [--purge]  stop this lab's servers (by PID / process group); --purge deletes DIR
#   env [DIR]             print `export MAILCAT_LAB_*=...` lines (also in DIR/lab.env):
#                           eval "$(tests/lab/lab.sh env)"
#   seed [DIR] --user U --count N --size BYTES [--reset] [--via maildir|lmtp] [--start-index I]
#                         bulk, deterministic mail for tests and benchmarks
#   token [DIR] [USER] [--ttl SECS] [--sasl xoauth2|oauthbearer]
#                         mint an OAuth2 access token (HS256 JWT) the servers accept
#   check [DIR]           self-check with stock tools; last line "N passed, N failed"
#   status [DIR]          say whether the lab in DIR runs (exit 0) or not (exit 1)
#   demo [DIR]            install, bring the lab up and run mailcat's main job against it:
#                         a config file for the lab's alice, then check, send, list and
#                         fetch into a Maildir (DIR/demo/)
#
# DIR defaults to $MAILCAT_LAB_DIR, else to a fixed directory per checkout:
#   ${TMPDIR:-/tmp}/mailcat-lab-<first 8 hex digits of sha256(checkout path)>
# (not under target/, so `cargo clean` cannot pull the files from under running servers;
# short, because Dovecot's unix sockets live in it).
#
# Ports: BASE + the standard port number. BASE is picked free when the lab starts: the
# base DIR used last time if all its ports are still free, else the first of 20000, 21000,
# ..., 31000 whose ports are all free on 127.0.0.1 and 127.0.0.2 (below the ephemeral
# range, so outgoing connections never take them). MAILCAT_LAB_BASE_PORT forces a base.
#
#   BASE+993  IMAP, implicit TLS          BASE+143  IMAP, STARTTLS
#   BASE+995  POP3, implicit TLS          BASE+110  POP3, STLS
#   BASE+465  SMTP submissions, implicit  BASE+587  SMTP submission, STARTTLS
#   BASE+24   LMTP into Dovecot (no TLS, no auth; for seeding)
#
# Every service listens on 127.0.0.1 and 127.0.0.2. Dovecot treats a client whose address
# equals the server's as "secured" and allows plaintext login there; on 127.0.0.2 (the
# "strict host", reached from 127.0.0.1) it behaves as a remote server does: no login
# before STARTTLS/STLS. Use the strict host for every STARTTLS test.
#
# Needs root (Postfix's master). Nothing under /etc is changed by up/down; the daemons drop
# privileges to the users the Debian packages create. Logs: DIR/logs/.
#
# Environment: MAILCAT_LAB_DIR, MAILCAT_LAB_BASE_PORT, MAILCAT_LAB_READY_TIMEOUT (s, 30),
#   MAILCAT_LAB_STOP_TIMEOUT (s, 10), MAILCAT_LAB_AUTH_FAILURE_DELAY (Dovecot value; default
#   0 = fast failures and no per-IP penalty), MAILCAT_LAB_PYTHON (default /usr/bin/python3).
set -euo pipefail

PROG=lab.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CHECKOUT=$(cd "$HERE/../.." && pwd -P)

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# ---------------------------------------------------------------------------- constants
PACKAGES=(dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix openssl python3 curl)
DOMAIN=example.test
TLS_NAME=localhost
HOST=127.0.0.1
STRICT_HOST=127.0.0.2
ADDRS="$HOST $STRICT_HOST"
# Offsets from the base port: the standard port numbers.
OFF_LMTP=24 OFF_POP3=110 OFF_IMAP=143 OFF_SUBMISSIONS=465 OFF_SUBMISSION=587 OFF_IMAPS=993 OFF_POP3S=995
OFFSETS="$OFF_LMTP $OFF_POP3 $OFF_IMAP $OFF_SUBMISSIONS $OFF_SUBMISSION $OFF_IMAPS $OFF_POP3S"
CANDIDATE_BASES=$(seq 20000 1000 31000)
# Global lock held while a lab picks its ports and binds them, so two labs starting at the
# same moment cannot both pick the same free base.
PORTS_LOCK=/tmp/.mailcat-lab-ports.lock

# Test users. One list feeds Dovecot's passwd-file (IMAP, POP3, LMTP, and SASL for Postfix)
# and Postfix's recipient table, so each password works for IMAP, POP3 and SMTP alike.
# Passwords differ per user so that a test mixing up credentials fails.
TRICKY_PASSWORD='p@ss "w0rd" \ end'     # space, double quotes, backslash: quoting in LOGIN/PASS/SASL
USERS=(
    "alice@$DOMAIN:alice-pw"
    "bob@$DOMAIN:bob-pw"
    "carol@$DOMAIN:carol-pw"
    "tricky@$DOMAIN:$TRICKY_PASSWORD"
    "outbound@$DOMAIN:outbound-pw"        # receives all mail addressed outside $DOMAIN
    "oauth@$DOMAIN:"                      # OAuth2 only: password logins refused (see deny passdb)
    "bench4k@$DOMAIN:bench-pw"            # benchmark mailboxes (lab.sh seed)
    "bench1m@$DOMAIN:bench-pw"
    "benchsmtp@$DOMAIN:bench-pw"
    "faults@$DOMAIN:faults-pw"            # the fault run (tests/src/bin/fault_run.rs): its mailbox
    "faultsink@$DOMAIN:faults-pw"         # ... and where its `send` faults deliver
)
OAUTH_USER=oauth@$DOMAIN

PY=${MAILCAT_LAB_PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1        # no root-owned __pycache__ in the checkout
[[ -x $PY ]] || PY=$(command -v python3 || echo /usr/bin/python3)

# ---------------------------------------------------------------------------- helpers
default_dir() {
    local h
    h=$(printf '%s' "$CHECKOUT" | sha256sum | cut -c1-8)
    printf '%s/mailcat-lab-%s' "${TMPDIR:-/tmp}" "$h"
}

need_root() { [[ $(id -u) -eq 0 ]] || die "'$1' must run as root (${2})"; }

# Sets the path variables for lab directory $1 (which need not exist yet).
set_paths() {
    DIR=$1
    TLS=$DIR/tls
    DV=$DIR/dovecot                 # dovecot.conf, users, oauth2 key
    DV_RUN=$DV/run                  # Dovecot base_dir: master.pid and sockets
    DV_CONF=$DV/dovecot.conf
    MAILROOT=$DIR/mail              # mail/<domain>/<user>/Maildir
    # Postfix config, queue and data dirs must not be nested in each other.
    PF=$DIR/postfix/etc
    PF_SPOOL=$DIR/postfix/spool
    PF_DATA=$DIR/postfix/data
    LOGS=$DIR/logs
    STATE=$DIR/state                # lock, base port, process-group ids
    ENV_FILE=$DIR/lab.env
    MARKER=$DIR/.mailcat-lab
}

ports_for() {   # BASE -> sets P_* variables
    local b=$1
    P_LMTP=$((b + OFF_LMTP)) P_POP3=$((b + OFF_POP3)) P_IMAP=$((b + OFF_IMAP))
    P_SUBMISSIONS=$((b + OFF_SUBMISSIONS)) P_SUBMISSION=$((b + OFF_SUBMISSION))
    P_IMAPS=$((b + OFF_IMAPS)) P_POP3S=$((b + OFF_POP3S))
}

# A pid file only counts if the pid is alive and runs the expected binary (after a crash the
# pid may have been reused). A zombie (dead, not yet reaped) does not count.
alive_as() {   # PID EXE
    local st
    [[ $1 =~ ^[0-9]+$ ]] && [[ $(readlink "/proc/$1/exe" 2>/dev/null) == "$2" ]] || return 1
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}
proc_alive() {   # PID -> true if it exists and is not a zombie
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}
first_field() { if [[ -r $1 ]]; then awk 'NR==1{print $1}' "$1" 2>/dev/null || true; fi; }
dovecot_exe() { readlink -f "$(command -v dovecot 2>/dev/null || echo /usr/sbin/dovecot)"; }
postfix_exe() { echo "$(postconf -dh daemon_directory 2>/dev/null || echo /usr/lib/postfix/sbin)/master"; }
dovecot_pid() { local p; p=$(first_field "$DV_RUN/master.pid"); if alive_as "$p" "$(dovecot_exe)"; then echo "$p"; fi; }
postfix_pid() { local p; p=$(first_field "$PF_SPOOL/pid/master.pid"); if alive_as "$p" "$(postfix_exe)"; then echo "$p"; fi; }

# PIDs of the processes in process group $1 that run a Dovecot or Postfix binary. Both
# masters call setsid(), so every child shares the master's pgid (recorded at start in
# DIR/state/*.pgid). Linux never hands out a PID still in use as a process-group id, so
# while any member lives the pgid cannot belong to someone else's group; if the leader
# itself is alive it must still be our master (checked by the caller).
group_members() {
    local want=$1 d stat rest pgid exe
    for d in /proc/[0-9]*; do
        # Builtins only until the pgid matches: this loop runs over every process.
        { read -r stat <"$d/stat"; } 2>/dev/null || continue
        rest=${stat##*) }
        read -r _ _ pgid _ <<<"$rest"
        [[ $pgid == "$want" ]] || continue
        exe=$(readlink "$d/exe" 2>/dev/null) || continue   # a zombie has none: it is gone
        case $exe in /usr/lib/dovecot/*|/usr/sbin/dovecot|/usr/lib/postfix/*|/usr/sbin/post*) echo "${d#/proc/}" ;; esac
    done
    return 0
}

# Kill -9 whatever is left of the process group recorded in $1 (a state/*.pgid file),
# unless its leader is alive and is somebody else's master.
sweep_group() {   # PGID-FILE LEADER-IS-OURS-FUNCTION
    local g members=() deadline
    g=$(first_field "$1")
    [[ $g =~ ^[0-9]+$ ]] || return 0
    # A live leader that is not our master means the group id now belongs to someone else.
    # A dead leader may linger as a zombie until init reaps it: that one is still ours.
    if proc_alive "$g" && ! "$2" "$g"; then return 0; fi
    deadline=$(( $(date +%s) + 5 ))
    while :; do
        mapfile -t members < <(group_members "$g")
        (( ${#members[@]} )) || break
        (( $(date +%s) < deadline )) || die "could not kill processes ${members[*]} of process group $g"
        log "killing ${#members[@]} leftover process(es) of group $g: ${members[*]}"
        kill -KILL "${members[@]}" 2>/dev/null || true
        sleep 0.1
    done
    rm -f "$1"
}
dovecot_leader_is_ours() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$DV_CONF"; }
postfix_leader_is_ours() { { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "MAIL_CONFIG=$PF"; }

# Parse "[DIR]" from the arguments of a command: the first argument that is not an option.
# Sets DIR_ARG and leaves the rest in REST.
split_dir_arg() {
    DIR_ARG="" REST=()
    while (( $# )); do
        if [[ -z $DIR_ARG && $1 != -* && ${#REST[@]} -eq 0 ]]; then DIR_ARG=$1; else REST+=("$1"); fi
        shift
    done
}
resolve_dir() {   # [DIR] -> absolute DIR (need not exist; symlinks in existing parents resolved)
    local d=${1:-${MAILCAT_LAB_DIR:-$(default_dir)}} parent
    [[ -n $d ]] || die "empty lab directory"
    [[ $d == /* ]] || d=$PWD/$d
    d=${d%/}
    if [[ -d $d ]]; then d=$(cd "$d" && pwd -P) || die "cannot enter $d"
    else
        parent=$(dirname "$d")
        if [[ -d $parent ]]; then parent=$(cd "$parent" && pwd -P) || die "cannot enter $parent"; fi
        d=${parent%/}/$(basename "$d")
    fi
    [[ $d != / && -n $d ]] || die "refusing to use / as the lab directory"
    printf '%s' "$d"
}
require_lab_dir() {
    [[ -e $MARKER ]] || die "$DIR is not a mailcat lab directory (no $MARKER); start one with: tests/lab/lab.sh up${DIR_ARG:+ $DIR_ARG}"
}
require_running() {
    require_lab_dir
    [[ -n $(dovecot_pid) && -n $(postfix_pid) ]] \
        || die "the lab in $DIR is not running; start it with: tests/lab/lab.sh up${DIR_ARG:+ $DIR_ARG} (logs: $LOGS/)"
}

# ---------------------------------------------------------------------------- install
cmd_install() {
    local missing=() p t0
    t0=$(now_ms)
    for p in "${PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
    done
    if (( ${#missing[@]} == 0 )); then
        log "all packages present (${PACKAGES[*]}); nothing to install ($(( $(now_ms) - t0 )) ms)"
        return 0
    fi
    need_root install "apt-get"
    log "installing ${missing[*]}"
    local dv_before
    dv_before=$(system_daemon_pids)
    # Keep apt from starting the system Dovecot/Postfix (they would take ports 25, 110, 143,
    # 993, 995 and are never used): a policy-rc.d that refuses every start, unless the
    # image already has one (Docker images do). Removed again on exit.
    local own_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        own_policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# temporary, from mailcat tests/lab/lab.sh install\nexit 101\n' >"$own_policy"
        chmod 0755 "$own_policy"
        # shellcheck disable=SC2064  # expand now: the path is fixed
        trap "rm -f '$own_policy'" EXIT
    fi
    # No interactive postfix question; "No configuration" leaves /etc/postfix unconfigured.
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-o DPkg::Lock::Timeout=120 -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 -q)
    timeout 300 apt-get "${apt_opts[@]}" update >&2 \
        || die "apt-get update failed or timed out (300 s); see the output above"
    timeout 900 apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed or timed out (900 s); see the output above"
    if [[ -n $own_policy ]]; then rm -f "$own_policy"; trap - EXIT; fi
    stop_system_daemons "$dv_before"
    log "installed in $(( $(now_ms) - t0 )) ms"
}
# PIDs of the system (/etc) instances of Dovecot and Postfix, if running.
system_daemon_pids() {
    local p
    p=$(first_field /run/dovecot/master.pid); alive_as "$p" "$(dovecot_exe)" && echo "$p"
    p=$(first_field /var/spool/postfix/pid/master.pid); alive_as "$p" "$(postfix_exe)" && echo "$p"
    return 0
}
stop_system_daemons() {   # PIDS-RUNNING-BEFORE-INSTALL
    local before=$1 p
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        systemctl disable dovecot postfix >/dev/null 2>&1 || true
    fi
    for p in $(system_daemon_pids); do
        grep -qx "$p" <<<"$before" && continue     # was running before us: not ours to stop
        log "stopping the system daemon apt started (pid $p, $(readlink "/proc/$p/exe"))"
        if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
            systemctl stop dovecot postfix >/dev/null 2>&1 || true
        fi
        kill -TERM "$p" 2>/dev/null || true
    done
}

# ---------------------------------------------------------------------------- up
check_prerequisites() {
    local bin u
    for bin in dovecot doveadm postfix postconf openssl flock timeout sha256sum; do
        command -v "$bin" >/dev/null || die "'$bin' is missing; run: tests/lab/lab.sh install"
    done
    [[ -x $PY ]] || die "python3 is missing; run: tests/lab/lab.sh install"
    for u in dovecot dovenull postfix mail; do
        getent passwd "$u" >/dev/null || die "system user '$u' is missing (the Debian packages create it); run: tests/lab/lab.sh install"
    done
    getent group postdrop >/dev/null || die "group 'postdrop' is missing (the postfix package creates it)"
    VMAIL_UID=$(id -u mail) VMAIL_GID=$(id -g mail)
}

make_layout() {
    [[ $DIR != *[[:space:]]* ]] || die "lab directory '$DIR' contains whitespace, which Dovecot/Postfix config values cannot hold; set MAILCAT_LAB_DIR"
    # Unix socket paths are limited to 107 bytes; Dovecot's longest is
    # base_dir/token-login/tokenlogin style (about 40 bytes past DIR/dovecot/run).
    (( ${#DIR} <= 56 )) || die "lab directory '$DIR' is too long (${#DIR} > 56 characters) for Dovecot's unix sockets; set MAILCAT_LAB_DIR to a shorter path"
    if [[ -d $DIR && ! -e $MARKER ]] && [[ -n $(ls -A "$DIR") ]]; then
        die "$DIR exists, is not empty and is not a lab directory (no .mailcat-lab marker); refusing to use it"
    fi
    mkdir -p "$DIR"
    set_paths "$(cd "$DIR" && pwd -P)"
    # The unprivileged service users must reach DIR: every parent must be world-searchable.
    local p perm
    p=$(dirname "$DIR")
    while [[ $p != / ]]; do
        perm=$(stat -c %a "$p")
        (( (8#$perm & 8#001) != 0 )) || die "parent directory $p (mode $perm) is not world-searchable, so the mail and postfix users cannot reach $DIR; set MAILCAT_LAB_DIR elsewhere (e.g. /tmp/mailcat-lab)"
        p=$(dirname "$p")
    done
    mkdir -p "$TLS" "$DV" "$DV_RUN" "$DV/state" "$MAILROOT" "$PF" "$PF_SPOOL" "$PF_DATA" "$LOGS" "$STATE"
    touch "$MARKER"
    chown root:root "$DIR" "$DIR/postfix" "$PF" "$PF_SPOOL" "$DV"
    chmod 0755 "$DIR" "$TLS" "$DV" "$DIR/postfix" "$PF" "$PF_SPOOL" "$LOGS" "$STATE"
    chown "$VMAIL_UID:$VMAIL_GID" "$MAILROOT"; chmod 0750 "$MAILROOT"
    chown postfix:root "$PF_DATA"; chmod 0700 "$PF_DATA"
}

# Self-signed CA and a leaf for localhost, 127.0.0.1, 127.0.0.2, ::1 with what rustls/webpki
# insist on: SAN (the CN is ignored), EKU serverAuth, CA:FALSE, SKI/AKI; a v3 CA with
# keyCertSign. Kept across restarts (tests may cache the CA); regenerated when missing or
# expiring within a day.
ensure_tls() {
    if [[ -s $TLS/ca.pem && -s $TLS/server.key && -s $TLS/server-chain.pem && -s $TLS/dh.pem ]] \
       && openssl x509 -checkend 86400 -noout -in "$TLS/server.pem" >/dev/null 2>&1; then
        return 0
    fi
    log "generating a test CA and server certificate in $TLS"
    local tmp; tmp=$(mktemp -d "$TLS/.gen.XXXXXX")
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -subj "/O=mailcat lab/CN=mailcat lab test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$tmp/err" \
        || die "openssl could not create the CA: $(cat "$tmp/err")"
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/O=mailcat lab/CN=$TLS_NAME" 2>"$tmp/err" \
        || die "openssl could not create the server key: $(cat "$tmp/err")"
    cat >"$tmp/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$TLS_NAME, IP:127.0.0.1, IP:127.0.0.2, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
        -set_serial "0x$(openssl rand -hex 12)" -days 825 -sha256 \
        -extfile "$tmp/server.ext" -out "$tmp/server.pem" 2>"$tmp/err" \
        || die "openssl could not sign the server certificate: $(cat "$tmp/err")"
    cat "$tmp/server.pem" "$tmp/ca.pem" >"$tmp/server-chain.pem"
    # The fixed RFC 7919 group: instant, where "openssl dhparam 2048" can take minutes.
    openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out "$tmp/dh.pem" 2>/dev/null
    openssl verify -CAfile "$tmp/ca.pem" "$tmp/server.pem" >/dev/null
    chmod 0600 "$tmp"/*.key; chmod 0644 "$tmp"/*.pem
    mv -f "$tmp"/{ca.key,ca.pem,server.key,server.pem,server-chain.pem,dh.pem} "$TLS/"
    rm -rf "$tmp"
}

# HMAC key for OAuth2 tokens (HS256 JWTs) that Dovecot validates locally, without network.
# Dovecot looks keys up in a dict at <azp|default>/<alg>/<kid|default>; with the fs dict
# that is the file oauth2-keys/default/HS256/default holding the base64 key.
ensure_oauth2_key() {
    OAUTH2_KEY=$DV/oauth2-keys/default/HS256/default
    [[ -s $OAUTH2_KEY ]] && return 0
    mkdir -p "$(dirname "$OAUTH2_KEY")"
    openssl rand -base64 32 | tr -d '\n' >"$OAUTH2_KEY"
    chown -R root:dovecot "$DV/oauth2-keys"; chmod -R u=rwX,g=rX,o= "$DV/oauth2-keys"
}

# Write PATH from PATH.new only when the content changed, and back-date new files by a
# minute: Postfix will not read a main.cf or map younger than about a second (it sleeps
# in 300 ms steps waiting for the writer), which cost ~2 s on every start.
CHANGED=""
install_file() {
    if [[ -e $1 ]] && cmp -s "$1.new" "$1"; then rm -f "$1.new"; return; fi
    CHANGED+=" $1"
    chmod "${2:-0644}" "$1.new"
    touch -d "@$(( $(date +%s) - 60 ))" "$1.new"
    mv -f "$1.new" "$1"
}

write_users() {
    local u
    {
        echo "# user:{scheme}password:uid:gid:gecos:home:shell:extra  (generated by tests/lab/lab.sh)"
        for u in "${USERS[@]}"; do
            # The OAuth2-only user gets no usable password; the deny passdb refuses it anyway.
            if [[ -z ${u#*:} ]]; then printf '%s:{PLAIN}%s::::::\n' "${u%%:*}" "$(openssl rand -hex 16)"
            else printf '%s:{PLAIN}%s::::::\n' "${u%%:*}" "${u#*:}"; fi
        done
    } >"$DV/users.new"
    # The random password above changes every time; keep the old file if only it differs.
    if [[ -e $DV/users ]] && diff -q <(grep -v "^$OAUTH_USER:" "$DV/users") <(grep -v "^$OAUTH_USER:" "$DV/users.new") >/dev/null; then
        rm -f "$DV/users.new"
    else
        chown root:dovecot "$DV/users.new"; chmod 0640 "$DV/users.new"   # read by the auth process
        mv -f "$DV/users.new" "$DV/users"
    fi
    echo "$OAUTH_USER" >"$DV/password-denied.new"
    install_file "$DV/password-denied"

    { echo "# recipients Postfix accepts for $DOMAIN (generated by tests/lab/lab.sh)"
      for u in "${USERS[@]}"; do printf '%s OK\n' "${u%%:*}"; done; } >"$PF/vmailbox.new"
    install_file "$PF/vmailbox"
    # Catch-all: any recipient outside $DOMAIN goes to outbound@, so nothing ever leaves the
    # machine and a test can see what a client "sent out" (To, Cc and Bcc).
    printf '!/@%s$/ outbound@%s\n' "${DOMAIN//./\\.}" "$DOMAIN" >"$PF/outbound.regexp.new"
    install_file "$PF/outbound.regexp"
}

write_dovecot_conf() {
    local penalty=""
    if [[ $AUTH_FAILURE_DELAY == 0 ]]; then
        # Every test client is 127.0.0.1: after a few failed logins Dovecot's per-IP penalty
        # would add 2-15 s to every later login. mode = 0 makes the master skip the socket,
        # and auth then runs without penalties (Dovecot's documented way to turn it off).
        penalty='service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}'
    fi
    cat >"$DV_CONF.new" <<EOF
# Generated by tests/lab/lab.sh -- edit the script, not this file.
# Standalone: does not include /etc/dovecot. Run as: dovecot -c $DV_CONF
instance_name = mailcat-lab
base_dir  = $DV_RUN
state_dir = $DV/state
protocols = imap pop3 lmtp
listen    = ${ADDRS// /, }

log_path      = $LOGS/dovecot.log
info_log_path = $LOGS/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
auth_verbose  = yes

# Implicit TLS on imaps/pop3s, STARTTLS/STLS on imap/pop3. ssl = required: no login of any
# kind before TLS -- except that Dovecot 2.3 deems a connection whose remote IP equals its
# local IP "secured", so on 127.0.0.1 -> 127.0.0.1 it allows plaintext logins whatever the
# settings say. Connections to $STRICT_HOST come from $HOST and get the strict rules.
ssl = required
ssl_cert = <$TLS/server.pem
ssl_key  = <$TLS/server.key
ssl_dh   = <$TLS/dh.pem
ssl_min_protocol = TLSv1.2
ssl_prefer_server_ciphers = yes
disable_plaintext_auth = yes

# PLAIN and LOGIN against the passwd-file, XOAUTH2 and OAUTHBEARER against HS256 JWTs
# checked locally (signature, exp/nbf/iat, sub == the SASL user) -- what Outlook.com offers.
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = $AUTH_FAILURE_DELAY
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $DV/oauth2.conf.ext
}
# Users listed here may not log in with a password (like an account whose provider has
# turned basic authentication off); they still log in with a token.
passdb {
  driver = passwd-file
  mechanisms = plain login
  deny = yes
  args = username_format=%Lu $DV/password-denied
}
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%Lu $DV/users
}
userdb {
  driver = passwd-file
  args = username_format=%Lu $DV/users
  default_fields = uid=$VMAIL_UID gid=$VMAIL_GID home=$MAILROOT/%Ld/%Ln
}
# Dovecot refuses mail access as root and below uid 500 by default: mail is stored as the
# Debian "mail" user.
first_valid_uid = $VMAIL_UID
last_valid_uid  = $VMAIL_UID
first_valid_gid = $VMAIL_GID
last_valid_gid  = $VMAIL_GID

mail_location = maildir:~/Maildir
# Separator and special-use folders as Outlook.com shows them over IMAP.
namespace inbox {
  inbox = yes
  separator = /
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
  mailbox Deleted {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
}
pop3_uidl_format = %08Xu%08Xv
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
postmaster_address = postmaster@$DOMAIN
hostname = $TLS_NAME

# Parallel tests open many sessions for one user from one IP (default limit: 10), and the
# idle-sessions bench (benches/src/bin/idle_sessions.rs) holds 1,000 IMAP sessions of one
# bench user at once, plus the tests running meanwhile.
protocol imap {
  mail_max_userip_connections = 1500
}
protocol pop3 {
  mail_max_userip_connections = 500
}

service imap-login {
  inet_listener imap {
    port = $P_IMAP
  }
  inet_listener imaps {
    port = $P_IMAPS
    ssl = yes
  }
  service_count = 0       # "high-performance" mode: no fork per connection
  process_min_avail = 1
}
service pop3-login {
  inet_listener pop3 {
    port = $P_POP3
  }
  inet_listener pop3s {
    port = $P_POP3S
    ssl = yes
  }
  service_count = 0
  process_min_avail = 1
}
# vsz_limit: indexing bench1m@'s million messages takes more than the default 256 MB.
# imap: one process per session (client_limit 1), so 1,500 processes for the sessions above;
# the login processes' client_limit (default_client_limit, 1,000) is raised to match.
default_client_limit = 2000
service imap {
  process_limit = 1500
  vsz_limit = 2G
}
service pop3 {
  process_limit = 500
  vsz_limit = 2G
}
service lmtp {
  unix_listener lmtp {      # Postfix's lmtp client (user postfix) delivers here
    mode = 0600
    user = postfix
    group = postfix
  }
  inet_listener lmtp {      # plain LMTP on loopback, for seeding
    port = $P_LMTP
  }
}
service auth {
  unix_listener auth-postfix {   # Postfix smtpd checks SMTP AUTH here
    mode = 0660
    user = postfix
    group = postfix
  }
}
$penalty
EOF
    install_file "$DV_CONF"
    printf '%s\n' "introspection_mode = local" \
        "local_validation_key_dict = fs:posix:prefix=$DV/oauth2-keys/" \
        "username_attribute = sub" >"$DV/oauth2.conf.ext.new"
    install_file "$DV/oauth2.conf.ext"
}

write_postfix_conf() {
    cat >"$PF/main.cf.new" <<EOF
# Generated by tests/lab/lab.sh -- edit the script, not this file.
compatibility_level = 3.6
queue_directory = $PF_SPOOL
data_directory  = $PF_DATA
mail_owner      = postfix
setgid_group    = postdrop

# Log to a file through postlogd (CI has no syslog). Fatal errors from before postlogd runs
# still go to syslog only: "postfix start" then just exits 1 (debug: strace -f postfix -c DIR check).
maillog_file = $LOGS/postfix.log
maillog_file_prefixes = $DIR

myhostname = $TLS_NAME
mydomain   = $DOMAIN
myorigin   = \$mydomain
mydestination =
# Only 127.0.0.1 here: Postfix checks this list against the addresses configured on the
# interfaces (127.0.0.2 is routed to lo, not configured) and dies. master.cf binds
# $STRICT_HOST itself.
inet_interfaces = $HOST
inet_protocols  = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP mailcat lab (Postfix)
biff = no

# No aliases, no local delivery, never any delivery off this machine.
alias_maps =
alias_database =
local_recipient_maps =
local_transport   = error:5.1.1 local delivery disabled in the mailcat lab
default_transport = error:5.7.1 outbound delivery disabled in the mailcat lab
relay_transport   = error:5.7.1 outbound delivery disabled in the mailcat lab
relayhost =
smtp_dns_support_level = disabled

# All of $DOMAIN goes by LMTP into Dovecot: the same Maildirs IMAP and POP3 read.
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps    = texthash:$PF/vmailbox
virtual_alias_maps      = regexp:$PF/outbound.regexp
# Must stay empty: it defaults to \$virtual_alias_maps, whose catch-all "matches" the bare
# domain and would make every real user "unknown in virtual alias table".
virtual_alias_domains   =
virtual_transport       = lmtp:unix:$DV_RUN/lmtp
recipient_delimiter     = +
message_size_limit      = 104857600
mailbox_size_limit      = 0

# SASL through Dovecot (same users and passwords as IMAP/POP3); enabled per port in master.cf.
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DV_RUN/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_authenticated_header = no
smtpd_tls_auth_only = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject

smtpd_tls_chain_files = $TLS/server.key, $TLS/server-chain.pem
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
tls_random_source = dev:/dev/urandom

# Test-friendly timing: retry deferred mail soon, never throttle a fast client.
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 30s
in_flow_delay = 0
delay_warning_time = 0
smtpd_error_sleep_time = 0
EOF
    install_file "$PF/main.cf"

    local a sub_opts="-o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject"
    {
        echo "# Generated by tests/lab/lab.sh. No chroot anywhere (5th column n): Debian's default"
        echo "# chroots smtpd into /var/spool/postfix, where our sockets and certs are not."
        echo "# service type private unpriv chroot wakeup maxproc command"
        for a in $ADDRS; do
            cat <<EOT
$a:$P_SUBMISSION inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  $sub_opts
$a:$P_SUBMISSIONS inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  $sub_opts
EOT
        done
        cat <<'EOT'
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
EOT
    } >"$PF/master.cf.new"
    install_file "$PF/master.cf"
}

# Prints the first base from the arguments whose ports are all free on both addresses.
# A bind with SO_REUSEADDR fails only if something listens there (or holds the port
# without SO_REUSEADDR); TIME_WAIT leftovers of our own earlier run do not count.
pick_free_base() {   # BASE...
    "$PY" - "$OFFSETS" "$ADDRS" "$@" <<'EOF'
import socket, sys
offsets = [int(x) for x in sys.argv[1].split()]
addrs = sys.argv[2].split()
def free(port):
    for a in addrs:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((a, port))
        except OSError:
            return False
        finally:
            s.close()
    return True
for base in sys.argv[3:]:
    if all(free(int(base) + o) for o in offsets):
        print(base)
        sys.exit(0)
sys.exit(1)
EOF
}

start_dovecot() {
    # Stale sockets from a crash: a leftover anvil-auth-penalty socket makes auth retry it
    # for 5 s at startup, so every first login would hang.
    rm -f "$DV_RUN/master.pid"
    find "$DV_RUN" -maxdepth 2 \( -type s -o -type p \) -delete
    log "starting dovecot (config $DV_CONF)"
    # Detach from our stdio and lock fds: Dovecot keeps an inherited stderr open forever (a
    # caller reading us through a pipe would never see EOF), and inherited lock fds would
    # hold our locks for the daemon's lifetime.
    dovecot -c "$DV_CONF" </dev/null >>"$LOGS/dovecot-start.log" 2>&1 8>&- 9>&- \
        || { tail -n 5 "$LOGS/dovecot-start.log" "$LOGS/dovecot.log" >&2 2>/dev/null || true
             die "dovecot failed to start; read $LOGS/dovecot-start.log and $LOGS/dovecot.log"; }
    local i
    for i in $(seq 50); do DV_PID=$(dovecot_pid); [[ -n $DV_PID ]] && break; sleep 0.1; done
    [[ -n $DV_PID ]] || die "dovecot did not write $DV_RUN/master.pid within 5 s; read $LOGS/dovecot.log"
    echo "$DV_PID" >"$STATE/dovecot.pgid"     # the master calls setsid(): pgid == pid
    : "$i"
}
start_postfix() {
    log "starting postfix (config $PF)"
    # "postfix start" creates the queue directories and returns once master is up (-w).
    postfix -c "$PF" start </dev/null >>"$LOGS/postfix-start.log" 2>&1 8>&- 9>&- \
        || { tail -n 20 "$LOGS/postfix-start.log" "$LOGS/postfix.log" >&2 2>/dev/null || true
             die "postfix failed to start; read $LOGS/postfix-start.log and $LOGS/postfix.log (errors before its logger runs go to syslog only; try: strace -f postfix -c $PF check)"; }
    local i
    for i in $(seq 50); do PF_PID=$(postfix_pid); [[ -n $PF_PID ]] && break; sleep 0.1; done
    [[ -n $PF_PID ]] || die "postfix did not write $PF_SPOOL/pid/master.pid within 5 s; read $LOGS/postfix.log"
    echo "$PF_PID" >"$STATE/postfix.pgid"
}

# Readiness: real protocol exchanges, not just an open port. Plaintext ports must greet;
# TLS (implicit and STARTTLS/STLS) must verify against our CA for the name localhost and
# then answer. AUTH in Postfix's EHLO proves the Dovecot SASL wiring too.
probe_plain() {   # HOST PORT GREETING-PREFIX QUIT-COMMAND [SEND EXPECT-REGEX]
    local fd line ok=1
    # The braces matter: a bare "exec ... 2>/dev/null" would silence stderr for good.
    { exec {fd}<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
    if read -r -t 3 -u "$fd" line && [[ $line == "$3"* ]]; then
        ok=0
        if [[ -n ${5:-} ]]; then
            ok=1
            printf '%s\r\n' "$5" >&"$fd"
            read -r -t 3 -u "$fd" line && [[ $line =~ $6 ]] && ok=0
        fi
    fi
    { printf '%s\r\n' "$4" >&"$fd"; } 2>/dev/null || true
    exec {fd}>&-
    return $ok
}
probe_tls() {     # HOST PORT STARTTLS-PROTO|"" SEND EXPECT-REGEX [QUIT]
    local st=()
    [[ -n $3 ]] && st=(-starttls "$3")
    # QUIT a moment later: Postfix logs "improper command pipelining" for EHLO+QUIT at once.
    # shellcheck disable=SC2059  # the arguments are printf formats (\r\n)
    { printf "$4"; [[ -z ${6:-} ]] || { sleep 0.1; printf "$6"; }; } | timeout 10 \
        openssl s_client -connect "$1:$2" "${st[@]}" \
        -servername "$TLS_NAME" -verify_hostname "$TLS_NAME" -CAfile "$TLS/ca.pem" \
        -verify_return_error -quiet 2>/dev/null | grep -Eq "$5"
}
wait_ready() {
    local h c deadline
    local checks=()
    for h in $ADDRS; do
        checks+=(
            "probe_plain $h $P_LMTP '220 ' 'QUIT'"
            "probe_tls $h $P_IMAPS '' 'a CAPABILITY\r\na LOGOUT\r\n' 'AUTH=PLAIN'"
            "probe_tls $h $P_POP3S '' 'CAPA\r\nQUIT\r\n' '^SASL.*PLAIN'"
            "probe_tls $h $P_IMAP imap 'a CAPABILITY\r\na LOGOUT\r\n' 'AUTH=PLAIN'"
            "probe_tls $h $P_POP3 pop3 'CAPA\r\nQUIT\r\n' '^SASL.*PLAIN'"
            "probe_tls $h $P_SUBMISSION smtp 'EHLO client.test\r\n' '^250.AUTH PLAIN LOGIN' 'QUIT\r\n'"
            "probe_tls $h $P_SUBMISSIONS '' 'EHLO client.test\r\n' '^250.AUTH PLAIN LOGIN' 'QUIT\r\n'"
        )
    done
    # On the strict host IMAP must refuse LOGIN before STARTTLS.
    checks+=("probe_plain $STRICT_HOST $P_IMAP '* OK' 'a LOGOUT' 'a CAPABILITY' 'LOGINDISABLED'")
    # All probes at once, each retrying until the common deadline; a failed probe leaves
    # its description in a file.
    deadline=$(( $(date +%s) + READY_TIMEOUT ))
    local fails; fails=$(mktemp -d "$STATE/.ready.XXXXXX")
    local i=0 pids=()
    for c in "${checks[@]}"; do
        i=$((i + 1))
        (
            until eval "$c"; do
                if (( $(date +%s) >= deadline )); then echo "$c" >"$fails/$i"; exit 1; fi
                sleep 0.1
            done
        ) 8>&- 9>&- &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    if [[ -n $(ls -A "$fails") ]]; then
        tail -n 15 "$LOGS/dovecot.log" "$LOGS/postfix.log" >&2 2>/dev/null || true
        log "probes still failing after ${READY_TIMEOUT} s:"; cat "$fails"/* >&2
        rm -rf "$fails"
        die "the lab in $DIR was not ready after ${READY_TIMEOUT} s; read $LOGS/dovecot.log and $LOGS/postfix.log"
    fi
    rm -rf "$fails"
}

cmd_up() {
    split_dir_arg "$@"; (( ${#REST[@]} == 0 )) || die "up: unexpected arguments: ${REST[*]}"
    need_root up "Postfix's master must start as root; the daemons drop privileges themselves"
    check_prerequisites
    local t0; t0=$(now_ms)
    set_paths "$(resolve_dir "$DIR_ARG")"
    READY_TIMEOUT=${MAILCAT_LAB_READY_TIMEOUT:-30}
    AUTH_FAILURE_DELAY=${MAILCAT_LAB_AUTH_FAILURE_DELAY:-0}
    make_layout

    # One up/down at a time per DIR.
    exec 9>"$STATE/lock"
    flock -w 60 9 || die "another lab.sh holds $STATE/lock for over 60 s"

    DV_PID=$(dovecot_pid) PF_PID=$(postfix_pid)
    local base="" remembered
    remembered=$(first_field "$STATE/base-port")
    if [[ -n $DV_PID || -n $PF_PID ]]; then
        # At least one daemon runs: it owns the remembered ports.
        base=$remembered
        [[ -n $base ]] || die "servers run in $DIR but $STATE/base-port is missing; run: tests/lab/lab.sh down $DIR"
        [[ -z ${MAILCAT_LAB_BASE_PORT:-} || $MAILCAT_LAB_BASE_PORT == "$base" ]] \
            || die "the lab in $DIR already runs on base port $base; run down first to change it"
    fi
    # Leftovers of a crash (children of a killed master still holding the ports).
    [[ -n $DV_PID ]] || sweep_group "$STATE/dovecot.pgid" dovecot_leader_is_ours
    [[ -n $PF_PID ]] || sweep_group "$STATE/postfix.pgid" postfix_leader_is_ours

    local need_ports=0
    [[ -n $DV_PID && -n $PF_PID ]] || need_ports=1
    if (( need_ports )); then
        exec 8>"$PORTS_LOCK"
        flock -w 60 8 || die "another lab is picking ports and holds $PORTS_LOCK for over 60 s"
    fi
    if [[ -z $base ]]; then
        if [[ -n ${MAILCAT_LAB_BASE_PORT:-} ]]; then
            if ! [[ $MAILCAT_LAB_BASE_PORT =~ ^[0-9]+$ ]] || (( MAILCAT_LAB_BASE_PORT < 1024 || MAILCAT_LAB_BASE_PORT + 995 > 65535 )); then
                die "MAILCAT_LAB_BASE_PORT=$MAILCAT_LAB_BASE_PORT: the ports BASE+24..BASE+995 must lie in 1024..65535"
            fi
            base=$(pick_free_base "$MAILCAT_LAB_BASE_PORT") \
                || die "MAILCAT_LAB_BASE_PORT=$MAILCAT_LAB_BASE_PORT: one of the ports BASE+{${OFFSETS// /,}} is in use on $ADDRS (see: ss -ltnp)"
        else
            # shellcheck disable=SC2086  # word splitting of the candidate list is intended
            base=$(pick_free_base $remembered $CANDIDATE_BASES) \
                || die "no free base port: for every base in ${CANDIDATE_BASES//$'\n'/ } some port BASE+{${OFFSETS// /,}} is in use on $ADDRS (see: ss -ltnp); set MAILCAT_LAB_BASE_PORT"
        fi
        [[ -z $remembered || $remembered == "$base" ]] || log "base port $remembered is taken now; using $base"
        echo "$base" >"$STATE/base-port"
    fi
    ports_for "$base"

    ensure_tls
    ensure_oauth2_key
    write_users
    write_dovecot_conf
    write_postfix_conf

    # A running daemon whose generated config changed (script edited, users added): reload.
    if [[ -n $DV_PID && $CHANGED == *"$DV/"* ]]; then
        log "dovecot config changed; reloading (pid $DV_PID)"
        doveadm -c "$DV_CONF" reload </dev/null 8>&- 9>&- || die "doveadm reload failed; read $LOGS/dovecot.log"
    fi
    if [[ -n $PF_PID && $CHANGED == *"$PF/"* ]]; then
        log "postfix config changed; reloading (pid $PF_PID)"
        postfix -c "$PF" reload </dev/null >>"$LOGS/postfix-start.log" 2>&1 8>&- 9>&- \
            || die "postfix reload failed; read $LOGS/postfix.log"
    fi
    [[ -n $DV_PID ]] || start_dovecot
    [[ -n $PF_PID ]] || start_postfix
    wait_ready
    (( need_ports )) && exec 8>&-
    write_env
    log "lab up in $(( $(now_ms) - t0 )) ms: $DIR, base port $base (IMAPS $P_IMAPS, IMAP $P_IMAP, POP3S $P_POP3S, POP3 $P_POP3, submission $P_SUBMISSION, submissions $P_SUBMISSIONS, LMTP $P_LMTP)"
    log "use it with: eval \"\$(tests/lab/lab.sh env${DIR_ARG:+ $DIR_ARG})\""
}

# ---------------------------------------------------------------------------- env
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }   # single-quote for sh
user_pw() { local u; for u in "${USERS[@]}"; do [[ ${u%%:*} == "$1" ]] && { printf '%s' "${u#*:}"; return; }; done; }
write_env() {
    local base token
    base=$(first_field "$STATE/base-port")
    ports_for "$base"
    OAUTH2_KEY=$DV/oauth2-keys/default/HS256/default
    token=$("$PY" "$HERE/mint_token.py" --key-file "$OAUTH2_KEY" --ttl 86400 "$OAUTH_USER") \
        || die "could not mint an OAuth2 token with $HERE/mint_token.py"
    local v
    {
        echo "# mailcat lab in $DIR, written $(date -u +%FT%TZ) by tests/lab/lab.sh. Use: eval \"\$(tests/lab/lab.sh env)\""
        for v in \
            "DIR=$DIR" "BASE_PORT=$base" \
            "HOST=$HOST" "STRICT_HOST=$STRICT_HOST" "TLS_NAME=$TLS_NAME" "CA_FILE=$TLS/ca.pem" \
            "IMAPS_PORT=$P_IMAPS" "IMAP_PORT=$P_IMAP" "POP3S_PORT=$P_POP3S" "POP3_PORT=$P_POP3" \
            "SUBMISSION_PORT=$P_SUBMISSION" "SUBMISSIONS_PORT=$P_SUBMISSIONS" "LMTP_PORT=$P_LMTP" \
            "DOMAIN=$DOMAIN" \
            "USER=alice@$DOMAIN" "PASSWORD=$(user_pw "alice@$DOMAIN")" \
            "USER2=bob@$DOMAIN" "PASSWORD2=$(user_pw "bob@$DOMAIN")" \
            "USER3=carol@$DOMAIN" "PASSWORD3=$(user_pw "carol@$DOMAIN")" \
            "TRICKY_USER=tricky@$DOMAIN" "TRICKY_PASSWORD=$TRICKY_PASSWORD" \
            "OUTBOUND_USER=outbound@$DOMAIN" "OUTBOUND_PASSWORD=$(user_pw "outbound@$DOMAIN")" \
            "BENCH_PASSWORD=$(user_pw "bench4k@$DOMAIN")" \
            "FAULTS_USER=faults@$DOMAIN" "FAULTS_SINK=faultsink@$DOMAIN" "FAULTS_PASSWORD=$(user_pw "faults@$DOMAIN")" \
            "OAUTH2_USER=$OAUTH_USER" "OAUTH2_TOKEN=$token" "OAUTH2_HS256_KEY=$(cat "$OAUTH2_KEY")" \
            "DOVECOT_CONF=$DV_CONF" "POSTFIX_CONFIG=$PF" "LOG_DIR=$LOGS"; do
            printf 'export MAILCAT_LAB_%s=%s\n' "${v%%=*}" "$(q "${v#*=}")"
        done
    } >"$ENV_FILE.new"
    chmod 0644 "$ENV_FILE.new"; mv -f "$ENV_FILE.new" "$ENV_FILE"
}
cmd_env() {
    split_dir_arg "$@"; (( ${#REST[@]} == 0 )) || die "env: unexpected arguments: ${REST[*]}"
    set_paths "$(resolve_dir "$DIR_ARG")"
    require_running
    # Rewritten each time so the OAuth2 token in it is fresh (valid 24 h).
    if [[ -w $DIR ]]; then write_env; fi
    cat "$ENV_FILE"
}
cmd_status() {
    split_dir_arg "$@"
    set_paths "$(resolve_dir "$DIR_ARG")"
    local d p
    d=$(dovecot_pid) p=$(postfix_pid)
    if [[ -n $d && -n $p ]]; then echo "running: $DIR (base port $(first_field "$STATE/base-port"), dovecot $d, postfix $p)"; return 0; fi
    echo "not running: $DIR (dovecot ${d:-down}, postfix ${p:-down})"; return 1
}

# ---------------------------------------------------------------------------- down
cmd_down() {
    split_dir_arg "$@"
    local purge=0 a
    for a in "${REST[@]}"; do
        case $a in --purge) purge=1 ;; *) die "down: unknown argument $a" ;; esac
    done
    set_paths "$(resolve_dir "$DIR_ARG")"
    if [[ ! -d $DIR ]]; then log "$DIR does not exist; nothing to stop"; return 0; fi
    require_lab_dir
    need_root down "the daemons run as root"
    local timeout=${MAILCAT_LAB_STOP_TIMEOUT:-10} t0 pid deadline masters=()
    t0=$(now_ms)
    { exec 9>>"$STATE/lock"; } 2>/dev/null && { flock -w 60 9 || die "another lab.sh holds $STATE/lock for over 60 s"; }

    # 1. SIGTERM to each master; they stop their children.
    pid=$(dovecot_pid); [[ -n $pid ]] && { log "stopping dovecot (pid $pid)"; kill -TERM "$pid" 2>/dev/null || true; masters+=("$pid"); }
    pid=$(postfix_pid); [[ -n $pid ]] && { log "stopping postfix (pid $pid)"; kill -TERM "$pid" 2>/dev/null || true; masters+=("$pid"); }
    # 2. Wait for them (a zombie counts as gone: some inits reap orphans only every few s).
    deadline=$(( $(date +%s) + timeout ))
    for pid in "${masters[@]}"; do
        while [[ -d /proc/$pid ]] && [[ $(awk '{sub(/.*\) /,""); print $1}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
            if (( $(date +%s) >= deadline )); then log "pid $pid still running after ${timeout} s; killing it"; kill -KILL "$pid" 2>/dev/null || true; break; fi
            sleep 0.05
        done
    done
    # 3. Children left by a crashed or killed master: give them a moment, then SIGKILL.
    local g f members=()
    (( ${#masters[@]} )) && for f in "$STATE/dovecot.pgid" "$STATE/postfix.pgid"; do
        g=$(first_field "$f"); [[ $g =~ ^[0-9]+$ ]] || continue
        deadline=$(( $(now_ms) + 1000 ))
        while mapfile -t members < <(group_members "$g"); (( ${#members[@]} )) && (( $(now_ms) < deadline )); do sleep 0.05; done
    done
    sweep_group "$STATE/dovecot.pgid" dovecot_leader_is_ours
    sweep_group "$STATE/postfix.pgid" postfix_leader_is_ours
    rm -f "$DV_RUN/master.pid" "$PF_SPOOL/pid/master.pid"
    log "lab down in $(( $(now_ms) - t0 )) ms: $DIR"
    if (( purge )); then
        exec 9>&-
        rm -rf -- "$DIR"
        log "purged $DIR"
    fi
}

# ---------------------------------------------------------------------------- seed, token, check
cmd_seed() {
    split_dir_arg "$@"
    set_paths "$(resolve_dir "$DIR_ARG")"
    require_running
    need_root seed "it writes into the Maildirs and runs doveadm"
    exec "$PY" "$HERE/seed_mailbox.py" --env "$ENV_FILE" "${REST[@]}"
}
cmd_token() {
    # token [DIR] [USER] [options]: one positional is DIR if it is a directory, else USER.
    local pos=() opts=()
    while (( $# )); do
        case $1 in
            --ttl|--sasl) opts+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
            -*) opts+=("$1"); shift ;;
            *) pos+=("$1"); shift ;;
        esac
    done
    (( ${#pos[@]} <= 2 )) || die "token: usage: tests/lab/lab.sh token [DIR] [USER] [--ttl SECS] [--sasl xoauth2|oauthbearer]"
    local dir="" user=""
    if (( ${#pos[@]} == 2 )); then dir=${pos[0]} user=${pos[1]}
    elif (( ${#pos[@]} == 1 )); then if [[ -d ${pos[0]} ]]; then dir=${pos[0]}; else user=${pos[0]}; fi; fi
    DIR_ARG=$dir
    set_paths "$(resolve_dir "$dir")"
    require_running
    exec "$PY" "$HERE/mint_token.py" --env "$ENV_FILE" ${user:+"$user"} "${opts[@]}"
}
cmd_check() {
    split_dir_arg "$@"; (( ${#REST[@]} == 0 )) || die "check: unexpected arguments: ${REST[*]}"
    set_paths "$(resolve_dir "$DIR_ARG")"
    require_running
    if [[ -w $DIR ]]; then write_env; fi      # a fresh OAuth2 token
    exec "$PY" "$HERE/check.py" "$ENV_FILE"
}

# mailcat's main job against the lab, as a newcomer's first command (README).
cmd_demo() {
    split_dir_arg "$@"; (( ${#REST[@]} == 0 )) || die "demo: unexpected arguments: ${REST[*]}"
    need_root demo "it installs and starts the mail servers"
    cmd_install
    "$0" up ${DIR_ARG:+"$DIR_ARG"}
    set_paths "$(resolve_dir "$DIR_ARG")"
    # shellcheck disable=SC1090
    source "$ENV_FILE"
    log "building mailcat (cargo build --release -p mailcat)"
    (cd "$CHECKOUT" && cargo build --quiet --release -p mailcat) || die "cargo build failed"
    local mailcat=$CHECKOUT/target/release/mailcat

    # The account, as a user writes it: one config file, the password from a command.
    local demo=$DIR/demo
    mkdir -p "$demo"
    ( umask 077; printf '%s\n' "$MAILCAT_LAB_PASSWORD" > "$demo/password" )
    export XDG_CONFIG_HOME=$demo/xdg
    local config=$XDG_CONFIG_HOME/mailcat/config.toml
    mkdir -p "$(dirname "$config")"
    cat > "$config" <<CONF
# Written by tests/lab/lab.sh demo: the lab's user $MAILCAT_LAB_USER.
default_account = "lab"

[accounts.lab]
email = "$MAILCAT_LAB_USER"
incoming = "imaps://$MAILCAT_LAB_TLS_NAME:$MAILCAT_LAB_IMAPS_PORT"
outgoing = "smtp://$MAILCAT_LAB_TLS_NAME:$MAILCAT_LAB_SUBMISSION_PORT"
password_cmd = "cat $demo/password"
ca_file = "$MAILCAT_LAB_CA_FILE"
CONF
    local stamp; stamp=$(date +%H:%M:%S)
    local id="demo-$(date +%s)-$$@example.test"
    cat > "$demo/message.eml" <<MSG
From: Alice <$MAILCAT_LAB_USER>
To: Alice <$MAILCAT_LAB_USER>
Subject: Hello from the mailcat demo at $stamp
Date: $(date -R)
Message-ID: <$id>

This message went out through Postfix (submission, STARTTLS, AUTH) and
came back through Dovecot (IMAP, implicit TLS).
.A line that starts with a dot arrives intact.
MSG

    local bold='' plain=''
    if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; fi
    demo_step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
    demo_step "cat $config"
    cat "$config"
    demo_step "mailcat check"
    "$mailcat" check || die "mailcat check failed (exit $?)"
    demo_step "mailcat send $MAILCAT_LAB_USER < $demo/message.eml"
    "$mailcat" send "$MAILCAT_LAB_USER" < "$demo/message.eml" || die "mailcat send failed (exit $?)"
    # Wait (up to 10 s) until the message is in the mailbox, as check --send-test does.
    local tries=0
    until "$mailcat" -q list --json 2>/dev/null | grep -qF "demo at $stamp" || (( ++tries > 50 )); do
        sleep 0.2
    done
    demo_step "mailcat list"
    "$mailcat" list || die "mailcat list failed (exit $?)"
    demo_step "mailcat fetch --to maildir:$demo/Maildir"
    "$mailcat" fetch --to "maildir:$demo/Maildir" || die "mailcat fetch failed (exit $?)"
    demo_step "grep -l '$id' $demo/Maildir/new/*"
    grep -l -F "$id" "$demo"/Maildir/new/* || die "the message is not in the Maildir"
    demo_step "mailcat fetch --to maildir:$demo/Maildir    # again: nothing new"
    "$mailcat" fetch --to "maildir:$demo/Maildir" || die "mailcat fetch failed (exit $?)"
    printf '\nThe demo account is in %s; try more with\n  XDG_CONFIG_HOME=%s %s --help\n' \
        "$config" "$XDG_CONFIG_HOME" "$mailcat"
    printf 'The lab keeps running; stop it with: tests/lab/lab.sh down\n'
}

# ---------------------------------------------------------------------------- main
cmd=${1:-}
[[ -n $cmd ]] || { usage; exit 64; }
shift
case $cmd in
    install) (( $# == 0 )) || die "install takes no arguments"; cmd_install ;;
    up)      cmd_up "$@" ;;
    down)    cmd_down "$@" ;;
    env)     cmd_env "$@" ;;
    seed)    cmd_seed "$@" ;;
    token)   cmd_token "$@" ;;
    check)   cmd_check "$@" ;;
    status)  cmd_status "$@" ;;
    demo)    cmd_demo "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
esac
