# cyrus.sh -- Cyrus IMAP 3.6 (Debian's cyrus-imapd + cyrus-pop3d): IMAP with implicit TLS on
# BASE+993 and STARTTLS on BASE+143, POP3 with implicit TLS on BASE+995 and STLS on BASE+110;
# no plaintext login before TLS; users in a sasldb (saslpasswd2 from sasl2-bin); the INBOX is
# created at the first login (autocreate). Sourced by run.sh.

# The libraries they need that are not installed are added by extract_root (missing_libs);
# libsasl2-modules (PLAIN, LOGIN) is only a Recommends of libsasl2-2, hence named here.
CYRUS_PACKAGES=(cyrus-common cyrus-imapd cyrus-pop3d sasl2-bin libsasl2-modules)

# cyrus_prepare : download and unpack the packages (cached), check the binaries' libraries.
cyrus_prepare() {
    CYRUS_ROOT=$(extract_root cyrus "${CYRUS_PACKAGES[@]}") || exit 1
    require_libs "$CYRUS_ROOT" usr/lib/cyrus/bin/master usr/lib/cyrus/bin/imapd usr/lib/cyrus/bin/pop3d \
        usr/lib/cyrus/bin/idled usr/lib/cyrus/bin/ctl_cyrusdb usr/sbin/saslpasswd2
    CYRUS_VERSION=$(deb_version "$CYRUS_ROOT" cyrus-imapd)
}

cyrus_up() {
    local d=$WORK/cyrus root etc
    cyrus_prepare
    root=$CYRUS_ROOT
    mkdir -p "$d"/{log,spool,run/proc,run/lock,run/socket,sieve} "$d"/lib/{db,socket,log,msg,user,quota,sync,ptclient}
    chmod 0755 "$d"
    # The binaries run as their compiled-in user "cyrus" (group "mail"): it exists in the
    # namespace's /etc only, with the uid of the system's "mail" user.
    etc=$d/etc
    etc_overlay_dir "$etc"
    echo "cyrus:x:$(id -u mail):$(id -g mail):Cyrus (interop):$d/lib:/usr/sbin/nologin" >>"$etc/passwd"

    # The users, in a sasldb of our own (PLAIN and LOGIN check it through auxprop).
    local u
    local realm
    for u in "alice:$ALICE_PW" "bob:$BOB_PW"; do
      for realm in "$INTEROP_DOMAIN" "$INTEROP_TLS_NAME"; do
        printf '%s' "${u#*:}" | LD_LIBRARY_PATH=$(root_libpath "$root") "$root/usr/sbin/saslpasswd2" \
            -p -c -f "$d/sasldb2" -u "$realm" "${u%%:*}" \
            || die "cyrus: saslpasswd2 could not add ${u%%:*} to $d/sasldb2"
      done
    done
    chown -R mail:mail "$d"/{log,lib,spool,run,sieve,sasldb2}

    pick_ports cyrus 110 143 993 995
    CYRUS_IMAP_PORT=$((BASE + 143)) CYRUS_IMAPS_PORT=$((BASE + 993))
    CYRUS_POP3_PORT=$((BASE + 110)) CYRUS_POP3S_PORT=$((BASE + 995))
    cat >"$d/imapd.conf" <<EOF
# mailcat interop: Cyrus IMAP on loopback (tests/interop/cyrus.sh)
servername: $INTEROP_TLS_NAME
configdirectory: $d/lib
proc_path: $d/run/proc
mboxname_lockpath: $d/run/lock
lmtpsocket: $d/run/socket/lmtp
idlesocket: $d/run/socket/idle
notifysocket: $d/run/socket/notify
defaultpartition: default
partition-default: $d/spool
sievedir: $d/sieve
virtdomains: userid
defaultdomain: $INTEROP_DOMAIN
unixhierarchysep: yes
altnamespace: no
autocreate_quota: 0
popminpoll: 0
allowplaintext: no
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $d/sasldb2
sasl_mech_list: PLAIN LOGIN
tls_server_cert: $TLS/server-chain.pem
tls_server_key: $TLS/server.key
tls_versions: tls1_2 tls1_3
syslog_prefix: cyrus-interop
EOF
    cat >"$d/cyrus.conf" <<EOF
# mailcat interop: the Cyrus services (tests/interop/cyrus.sh)
START {
    recover cmd="/usr/lib/cyrus/bin/ctl_cyrusdb -C $d/imapd.conf -r"
}
SERVICES {
    imap  cmd="/usr/lib/cyrus/bin/imapd -C $d/imapd.conf" listen="$INTEROP_HOST:$CYRUS_IMAP_PORT" prefork=0
    imaps cmd="/usr/lib/cyrus/bin/imapd -s -C $d/imapd.conf" listen="$INTEROP_HOST:$CYRUS_IMAPS_PORT" prefork=0
    pop3  cmd="/usr/lib/cyrus/bin/pop3d -C $d/imapd.conf" listen="$INTEROP_HOST:$CYRUS_POP3_PORT" prefork=0
    pop3s cmd="/usr/lib/cyrus/bin/pop3d -s -C $d/imapd.conf" listen="$INTEROP_HOST:$CYRUS_POP3S_PORT" prefork=0
}
EVENTS {
}
DAEMON {
    # Without idled an IDLEing client hears of new mail only at the next poll (60 s).
    idled cmd="/usr/lib/cyrus/bin/idled -C $d/imapd.conf"
}
EOF
    chmod 0644 "$d/imapd.conf" "$d/cyrus.conf"
    log "starting Cyrus IMAP $CYRUS_VERSION (IMAPS $CYRUS_IMAPS_PORT, IMAP $CYRUS_IMAP_PORT, POP3S $CYRUS_POP3S_PORT, POP3 $CYRUS_POP3_PORT)"
    # Cyrus logs only to syslog: the namespace's /dev/log leads to $d/log/syslog.
    start_in_namespace cyrus "$d/log/daemon.out" "
        $(syslog_cmds "$d")
        $(overlay_cmd /etc "$etc")
        $(overlay_cmd /usr "$root/usr")
        /usr/lib/cyrus/bin/master -C '$d/imapd.conf' -M '$d/cyrus.conf' -p '$d/run/master.pid' &
        wait"
    wait_tls_port cyrus "$CYRUS_IMAPS_PORT"
    wait_tls_port cyrus "$CYRUS_IMAP_PORT" imap
    wait_tls_port cyrus "$CYRUS_POP3S_PORT"
    wait_tls_port cyrus "$CYRUS_POP3_PORT" pop3
    release_ports
}

# cyrus_append FILE... : APPEND to alice's INBOX (imaplib over implicit TLS).
cyrus_append() {
    SEED_PASSWORD=$ALICE_PW python3 "$HERE/seed_imap.py" "$INTEROP_TLS_NAME" "$CYRUS_IMAPS_PORT" "$TLS/ca.pem" \
        "alice@$INTEROP_DOMAIN" INBOX "$@"
}

cyrus_checks() {
    local user=alice@$INTEROP_DOMAIN h=$INTEROP_TLS_NAME
    make_messages "$MSGS" cyrus
    echo "Cyrus IMAP $CYRUS_VERSION"
    cyrus_append "$MSGS"/1.eml "$MSGS"/2.eml "$MSGS"/3.eml >"$WORK/out/cyrus-seed.log" 2>&1 \
        || { cat "$WORK/out/cyrus-seed.log" >&2; show_logs cyrus; die "cyrus: seeding alice's INBOX over IMAP failed (above)"; }
    local seeds=("$MSGS"/1.eml "$MSGS"/2.eml "$MSGS"/3.eml)
    incoming_checks cyrus imaps "imaps://$h:$CYRUS_IMAPS_PORT" "$user" "$ALICE_PW" "${seeds[@]}"
    incoming_checks cyrus imap "imap://$h:$CYRUS_IMAP_PORT" "$user" "$ALICE_PW" "${seeds[@]}"
    incoming_checks cyrus pop3s "pop3s://$h:$CYRUS_POP3S_PORT" "$user" "$ALICE_PW" "${seeds[@]}"
    incoming_checks cyrus pop3 "pop3://$h:$CYRUS_POP3_PORT" "$user" "$ALICE_PW" "${seeds[@]}"
    IN_URL="imaps://$h:$CYRUS_IMAPS_PORT"
    check cyrus:imaps:wrong-password "a wrong password exits 77" in_wrong_password
    make_messages "$MSGS/new" cyrus-new
    check cyrus:imaps:watch "watch prints only the message that arrives" \
        in_watch cyrus_append "$MSGS/new/1.eml" "interop cyrus-new plain"
    check cyrus:imaps:fetch-delete "fetch --delete empties the mailbox" in_fetch_delete "$WORK/cyrus/deleted-imaps" 4
    cyrus_append "$MSGS/new/2.eml" "$MSGS/new/3.eml" >"$WORK/out/cyrus-seed2.log" 2>&1 \
        || { cat "$WORK/out/cyrus-seed2.log" >&2; die "cyrus: seeding alice's INBOX over IMAP failed (above)"; }
    IN_URL="pop3s://$h:$CYRUS_POP3S_PORT"
    check cyrus:pop3s:fetch-delete "fetch --delete empties the mailbox" in_fetch_delete "$WORK/cyrus/deleted-pop3s" 2
}
