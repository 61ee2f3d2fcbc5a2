# lib.sh -- helpers shared by the interop suite (sourced by run.sh and the server scripts).
#
# Packages: each server's Debian packages are downloaded with `apt-get download` into
# $CACHE/debs (never installed: several conflict with the lab's Dovecot and Postfix) and
# unpacked with `dpkg -x` into $CACHE/roots/NAME-<hash of the .deb names>, once.
# Daemons: each runs in its own PID and mount namespace (see start_in_namespace): its
# files are overlaid on /usr/lib, /etc ... there only, and killing the namespace's first
# process ends every process the daemon started, whatever happens to this script.

log() { printf 'interop: %s\n' "$*" >&2; }
die() { printf 'interop: ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

INTEROP_HOST=127.0.0.1
INTEROP_TLS_NAME=localhost
INTEROP_DOMAIN=example.test

# ---------------------------------------------------------------------------- packages
# fetch_debs PKG... : make sure the candidate .deb of each PKG is in $CACHE/debs; prints the
# file names (one a line). apt's lists are refreshed once if a package is unknown.
fetch_debs() {
    local debs=$CACHE/debs uris missing=() all=() line file empty
    mkdir -p "$debs"
    # --print-uris leaves out the files already in the current directory: ask from an empty one.
    empty=$(mktemp -d)
    uris=$(cd "$empty" && apt-get -q download --print-uris "$@" 2>&1) || {
        log "apt does not know some of: $*; running apt-get update"
        timeout 300 apt-get -q -o Acquire::Retries=3 update >&2 || die "apt-get update failed"
        uris=$(cd "$empty" && apt-get -q download --print-uris "$@" 2>&1) \
            || die "apt-get download --print-uris $* failed: $uris"
    }
    rmdir "$empty"
    while read -r line; do
        [[ $line == \'* ]] || continue
        file=$(awk '{print $2}' <<<"$line")
        all+=("$file")
        [[ -s $debs/$file ]] || missing+=("$file")
    done <<<"$uris"
    if (( ${#missing[@]} )); then
        log "downloading ${#missing[@]} package(s) into $debs"
        local get=(timeout 600 apt-get -q -o APT::Sandbox::User=root -o Acquire::Retries=3 download "$@")
        if ! (cd "$debs" && "${get[@]}" >&2); then
            # Stale lists name a version the mirror no longer has (a security update replaced it).
            log "apt-get download failed; running apt-get update and trying once more"
            timeout 300 apt-get -q -o Acquire::Retries=3 update >&2 || die "apt-get update failed"
            (cd "$debs" && "${get[@]}" >&2) || die "apt-get download $* failed (see above)"
            # The file names may have changed with the lists.
            fetch_debs "$@"
            return
        fi
    fi
    (( ${#all[@]} == $# )) || die "apt-get download --print-uris $* named ${#all[@]} files for $# packages: $uris"
    printf '%s\n' "${all[@]}"
}

# missing_libs PKG... : the shared-library packages (lib*) that PKG... need, directly or through
# other library packages, and that are not installed here (first alternative of each Depends
# or Pre-Depends). Only libraries: the servers' other dependencies (an MTA, cron, perl
# modules, the init scripts' helpers) are not needed to run the daemons from the suite.
missing_libs() {
    local seen=" " queue=("$@") next=() p line alt skip installed
    installed=" $(dpkg-query -W -f='${Package}=${Status}\n' 2>/dev/null | awk -F= '$2 == "install ok installed" {print $1}' | sed 's/:.*//' | tr '\n' ' ') "
    while (( ${#queue[@]} )); do
        next=()
        for p in "${queue[@]}"; do seen+="$p "; done
        while read -r line; do
            skip=${alt:-0}
            alt=0
            [[ $line == \|* ]] && alt=1
            (( skip )) && continue
            [[ $line =~ ^\|?(Pre)?Depends:\ ([^ <]+)$ ]] || continue
            p=${BASH_REMATCH[2]%%:*}
            [[ $p == lib* && $seen != *" $p "* && $installed != *" $p "* ]] || continue
            seen+="$p "
            next+=("$p")
            echo "$p"
        done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
                    --no-replaces --no-enhances "${queue[@]}" 2>/dev/null | sed 's/^ *//')
        queue=("${next[@]}")
    done
}

# extract_root NAME PKG... : prints the directory where PKG... and the libraries they need
# (missing_libs) are unpacked.
extract_root() {
    local name=$1 files root key f libs=()
    shift
    mapfile -t libs < <(missing_libs "$@")
    files=$(fetch_debs "$@" "${libs[@]}") || exit 1
    key=$(sort <<<"$files" | sha256sum | cut -c1-12)
    root=$CACHE/roots/$name-$key
    if [[ ! -e $root/.complete ]]; then
        rm -rf "$root" "$root.tmp"
        mkdir -p "$root.tmp"
        while read -r f; do
            dpkg -x "$CACHE/debs/$f" "$root.tmp" || die "dpkg -x $CACHE/debs/$f failed"
        done <<<"$files"
        # Debian 12 is merged-/usr: /lib, /bin and /sbin are links into /usr, so whatever a
        # package still ships there goes under usr/ and one overlay on /usr covers all.
        for f in lib bin sbin; do
            [[ -d $root.tmp/$f && ! -L $root.tmp/$f ]] || continue
            mkdir -p "$root.tmp/usr/$f"
            cp -a "$root.tmp/$f/." "$root.tmp/usr/$f/"
            rm -rf "${root:?}.tmp/$f"
        done
        printf '%s\n' "$files" >"$root.tmp/.complete"
        mv "$root.tmp" "$root"
        log "unpacked $name into $root"
    fi
    printf '%s' "$root"
}

# The library path for binaries of ROOT run outside a namespace (inside, ROOT/usr is laid
# over /usr, so binaries that re-exec themselves by their compiled-in path work).
root_libpath() { printf '%s/usr/lib/x86_64-linux-gnu:%s/usr/lib' "$1" "$1"; }

# require_libs ROOT BIN... : every shared library of every BIN resolves (from the system or
# ROOT); otherwise name the missing ones (a package to add to the server's list).
require_libs() {
    local root=$1 bin out unresolved=""
    shift
    for bin in "$@"; do
        [[ -x $root/$bin ]] || die "$bin is not in $root (package list out of date?)"
        out=$(LD_LIBRARY_PATH=$(root_libpath "$root") ldd "$root/$bin" 2>&1) || die "ldd $root/$bin failed: $out"
        unresolved+=$(grep 'not found' <<<"$out" | awk -v b="$bin" '{print "  " b ": " $1}' || true)
    done
    [[ -z $unresolved ]] || die "shared libraries missing (add their packages to the list):"$'\n'"$unresolved"
}

# deb_version ROOT PKG : the version of PKG as unpacked in ROOT (from the .deb file name).
deb_version() { sed -n "s/^$2_\\(.*\\)_[a-z0-9]*\\.deb\$/\\1/p" "$1/.complete" | sed 's/%3a/:/'; }

# ---------------------------------------------------------------------------- ports
# pick_ports NAME OFFSET... : sets BASE to the first base of 12000, 12100, ..., 19900 whose
# BASE+OFFSETs are all free on 127.0.0.1 (below Linux's ephemeral range, so outgoing
# connections never take them). Holds $PORTS_LOCK (fd 7) until release_ports, so two runs
# starting at once cannot pick the same base; the caller starts its daemon in between.
PORTS_LOCK=/tmp/.mailcat-interop-ports.lock
pick_ports() {
    local name=$1
    shift
    exec 7>"$PORTS_LOCK"
    flock -w 60 7 || die "another interop run holds $PORTS_LOCK for over 60 s"
    BASE=$(python3 - "$INTEROP_HOST" "$*" <<'EOF'
import socket, sys
host, offsets = sys.argv[1], [int(x) for x in sys.argv[2].split()]
def free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()
for base in range(12000, 20000, 100):
    if all(free(base + o) for o in offsets):
        print(base)
        sys.exit(0)
sys.exit(1)
EOF
    ) || die "$name: no free ports: for every base 12000..19900 one of BASE+{$*} is in use (see: ss -ltnp)"
}
release_ports() { exec 7>&-; }

# wait_tls_port NAME PORT [starttls-proto] : waits (up to $READY_TIMEOUT s) until PORT answers
# with a TLS handshake that verifies against the test CA. The daemon's log is shown on failure.
READY_TIMEOUT=${MAILCAT_INTEROP_READY_TIMEOUT:-30}
wait_tls_port() {
    local name=$1 port=$2 proto=${3:-} deadline args=()
    [[ -n $proto ]] && args=(-starttls "$proto")
    deadline=$(( $(date +%s) + READY_TIMEOUT ))
    until timeout 5 openssl s_client -connect "$INTEROP_HOST:$port" -servername "$INTEROP_TLS_NAME" \
            -verify_return_error -CAfile "$TLS/ca.pem" "${args[@]}" </dev/null >"$WORK/probe.out" 2>&1; do
        if (( $(date +%s) >= deadline )) || ! server_alive "$name"; then
            sed 's/^/  /' "$WORK/probe.out" >&2
            show_logs "$name"
            die "$name: port $port${proto:+ ($proto STARTTLS)} did not answer with verified TLS within ${READY_TIMEOUT} s (or the daemon died)"
        fi
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------- TLS
# make_tls DIR : a test CA and a server certificate for localhost / 127.0.0.1 (as lab.sh does).
make_tls() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -keyout "$d/ca.key" -out "$d/ca.pem" \
        -subj "/O=mailcat interop/CN=mailcat interop test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$d/err" \
        || die "openssl could not create the CA: $(cat "$d/err")"
    openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$d/server.key" -out "$d/server.csr" \
        -subj "/O=mailcat interop/CN=$INTEROP_TLS_NAME" 2>"$d/err" || die "openssl: server key: $(cat "$d/err")"
    cat >"$d/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$INTEROP_TLS_NAME, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 12)" \
        -days 30 -sha256 -extfile "$d/server.ext" -out "$d/server.pem" 2>"$d/err" \
        || die "openssl: server certificate: $(cat "$d/err")"
    cat "$d/server.pem" "$d/ca.pem" >"$d/server-chain.pem"
    # Courier wants key and chain in one file.
    cat "$d/server.key" "$d/server-chain.pem" >"$d/server-all.pem"
    openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out "$d/dh.pem" 2>/dev/null
    chmod 0644 "$d"/*.pem "$d"/*.key
}

# ---------------------------------------------------------------------------- daemons
# start_in_namespace NAME LOGFILE SCRIPT : runs SCRIPT (bash) as the first process of a new
# PID + mount namespace, in the background. SCRIPT sets up its mounts (private to it) and
# runs the daemon in the foreground. The namespace's processes all die when it is stopped.
declare -A SERVER_PIDS=()
start_in_namespace() {
    local name=$1 logfile=$2 script=$3
    setsid unshare --pid --fork --kill-child --mount --propagation private \
        bash -euo pipefail -c "$script" </dev/null >>"$logfile" 2>&1 &
    SERVER_PIDS[$name]=$!
}
server_alive() { local p=${SERVER_PIDS[$1]:-}; [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }
# stop_server NAME : ends the namespace: SIGKILL to its first process (the kernel then kills
# every process left in the PID namespace before unshare, which waits for it, can exit), so
# when this returns no process of the server is left and its ports are free. Should this
# script itself be killed, unshare --kill-child does the same.
stop_server() {
    local p=${SERVER_PIDS[$1]:-} init i
    [[ -n $p ]] || return 0
    init=$(pgrep -P "$p" || true)
    [[ -z $init ]] || kill -KILL "$init" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "SERVER_PIDS[$1]"
}
stop_all_servers() { local n; for n in "${!SERVER_PIDS[@]}"; do stop_server "$n"; done; }
show_logs() {   # NAME : the tail of every log of that server
    local f
    for f in "$WORK/$1"/log/*; do
        [[ -s $f ]] || continue
        printf -- '--- %s (last 25 lines)\n' "$f" >&2
        tail -n 25 "$f" | sed 's/^/  /' >&2
    done
}

# overlay_cmd TARGET LOWER... : the mount command (for a namespace script) that lays the
# LOWER directories over TARGET, read-only; the first LOWER wins.
overlay_cmd() {
    local target=$1 lower
    shift
    lower=$(IFS=:; echo "$*")
    printf 'mount -t overlay overlay -o lowerdir=%s:%s %s\n' "$lower" "$target" "$target"
}

# etc_overlay_dir DIR : a directory for the namespace's /etc with passwd and group copied
# from the system (a server may add its users there, e.g. Exim's Debian-exim).
etc_overlay_dir() {
    mkdir -p "$1"
    cp /etc/passwd /etc/group "$1/"
}

# syslog_cmds DIR : the lines (for a namespace script) that start a syslog receiver writing
# DIR/log/syslog and point the namespace's /dev/log at it, for daemons that log nowhere else.
syslog_cmds() {
    local d=$1
    mkdir -p "$d/dev"
    ln -sfn "$d/syslog.sock" "$d/dev/log"
    printf '%s\n' \
        "python3 '$HERE/syslog_sink.py' '$d/syslog.sock' '$d/log/syslog' &" \
        "for i in \$(seq 50); do [[ -S '$d/syslog.sock' ]] && break; sleep 0.05; done" \
        "$(overlay_cmd /dev "$d/dev")"
}
