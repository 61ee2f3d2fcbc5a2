# courier.sh -- Courier-IMAP 5.0 and courier-pop (Debian's courier-imap, courier-pop,
# courier-authdaemon with its userdb): IMAP with implicit TLS on BASE+993 and STARTTLS on
# BASE+143, POP3 with implicit TLS on BASE+995 and STLS on BASE+110, login only over TLS.
# Started by the packages' own start scripts with their config files, changed only where a
# test needs it (appended to each file). Sourced by run.sh.

# The libraries they need that are not installed are added by extract_root (missing_libs).
COURIER_PACKAGES=(courier-imap courier-pop courier-base courier-authdaemon courier-authlib
    courier-authlib-userdb gamin)

# courier_prepare : download and unpack the packages (cached), check the binaries' libraries.
courier_prepare() {
    local root
    root=$(extract_root courier "${COURIER_PACKAGES[@]}") || exit 1
    require_libs "$root" usr/sbin/couriertcpd usr/bin/couriertls usr/bin/imapd usr/lib/courier/courier/imaplogin \
        usr/lib/courier/courier/courierpop3d usr/lib/courier/courier/courierpop3login \
        usr/lib/courier/courier-authlib/authdaemond usr/lib/courier/courier-authlib/makedatprog \
        usr/libexec/gam_server
    COURIER_ROOT=$root
    COURIER_VERSION=$(deb_version "$root" courier-imap)
    COURIER_POP_VERSION=$(deb_version "$root" courier-pop)
}

courier_up() {
    local d=$WORK/courier root etc c
    courier_prepare
    root=$COURIER_ROOT
    mkdir -p "$d"/{log,home,etc.rw,fam,usr/libexec}
    # Courier's imapd watches the Maildir through gamin, whose library runs
    # /usr/libexec/gam_server. In the namespace that is a link to $d/fam/gam_server, which
    # courier_fam adds (from the gamin package) or removes: without it Courier still works but
    # greets every login with an [ALERT] and each IMAP connection takes a second longer.
    ln -sfn "$d/fam/gam_server" "$d/usr/libexec/gam_server"
    chmod 0755 "$d" "$d/home"
    # The namespace's /etc is an overlay with a copy of $d/etc as its writable upper layer: the
    # start scripts read /etc/courier/* and write imapaccess.dat there.
    etc=$d/etc
    etc_overlay_dir "$etc"
    echo "courier:x:$(id -u mail):$(id -g mail):Courier (interop):/nonexistent:/usr/sbin/nologin" >>"$etc/passwd"
    echo "courier:x:$(id -g mail):" >>"$etc/group"
    mkdir -p "$etc/courier"
    for c in imapd imapd-ssl pop3d pop3d-ssl authdaemonrc imapaccess; do
        cp -a "$root/etc/courier/$c" "$etc/courier/$c"
    done

    # The users: userdb entries (password as a SHA-512 crypt hash), mail as the "mail" user.
    local u name pw home
    : >"$etc/courier/userdb"
    chmod 0600 "$etc/courier/userdb"
    for u in "alice:$ALICE_PW" "bob:$BOB_PW"; do
        name=${u%%:*} pw=${u#*:} home=$d/home/$name
        mkdir -p "$home/Maildir"/{cur,new,tmp}
        printf '%s@%s\tuid=%s|gid=%s|home=%s|mail=%s/Maildir|systempw=%s\n' "$name" "$INTEROP_DOMAIN" \
            "$(id -u mail)" "$(id -g mail)" "$home" "$home" "$(openssl passwd -6 "$pw")" >>"$etc/courier/userdb"
    done
    chown -R mail:mail "$d/home"

    pick_ports courier 110 143 993 995
    COURIER_IMAP_PORT=$((BASE + 143)) COURIER_IMAPS_PORT=$((BASE + 993))
    COURIER_POP3_PORT=$((BASE + 110)) COURIER_POP3S_PORT=$((BASE + 995))
    local tls="TLS_CERTFILE=$TLS/server-all.pem
TLS_DHPARAMS=$TLS/dh.pem
TLS_TRUSTCERTS=$TLS/ca.pem
TLS_CACHEFILE=''"
    printf '\n# mailcat interop (tests/interop/courier.sh)\n%s\n' >>"$etc/courier/imapd" \
        "ADDRESS=$INTEROP_HOST" "PORT=$COURIER_IMAP_PORT" \
        "# Debian's default (0) answers IDLE by polling the Maildir every 60 s; 1 uses gamin." \
        "IMAP_ENHANCEDIDLE=1"
    printf '\n# mailcat interop (tests/interop/courier.sh)\n%s\n' >>"$etc/courier/imapd-ssl" \
        "SSLADDRESS=$INTEROP_HOST" "SSLPORT=$COURIER_IMAPS_PORT" "IMAP_TLS_REQUIRED=1" "$tls"
    printf '\n# mailcat interop (tests/interop/courier.sh)\n%s\n' >>"$etc/courier/pop3d" \
        "ADDRESS=$INTEROP_HOST" "PORT=$COURIER_POP3_PORT"
    printf '\n# mailcat interop (tests/interop/courier.sh)\n%s\n' >>"$etc/courier/pop3d-ssl" \
        "SSLADDRESS=$INTEROP_HOST" "SSLPORT=$COURIER_POP3S_PORT" "POP3_TLS_REQUIRED=1" "$tls"
    printf '\n# mailcat interop (tests/interop/courier.sh)\n%s\n' >>"$etc/courier/authdaemonrc" \
        'authmodulelist="authuserdb"' 'daemons=2'

    log "starting Courier-IMAP $COURIER_VERSION, courier-pop $COURIER_POP_VERSION (IMAPS $COURIER_IMAPS_PORT, IMAP $COURIER_IMAP_PORT, POP3S $COURIER_POP3S_PORT, POP3 $COURIER_POP3_PORT)"
    # Courier logs to syslog only (through courierlogger); its run-time files go to /run/courier
    # (a tmpfs of the namespace's own).
    start_in_namespace courier "$d/log/daemon.out" "
        $(syslog_cmds "$d")
        # The writable layer lives on a tmpfs: overlayfs refuses an upper dir on overlayfs
        # (a container's /tmp).
        mount -t tmpfs -o mode=0755 tmpfs '$d/etc.rw'
        mkdir '$d/etc.rw/work'
        cp -a '$etc' '$d/etc.rw/upper'
        mount -t overlay overlay -o 'lowerdir=/etc,upperdir=$d/etc.rw/upper,workdir=$d/etc.rw/work' /etc
        $(overlay_cmd /usr "$d/usr" "$root/usr")
        mount -t tmpfs -o mode=0755 tmpfs /run
        mkdir -p /run/courier/authdaemon
        chown courier:courier /run/courier /run/courier/authdaemon
        makeuserdb
        /usr/sbin/authdaemond start
        for i in \$(seq 100); do [[ -S /run/courier/authdaemon/socket ]] && break; sleep 0.05; done
        /usr/sbin/imapd start
        /usr/sbin/imapd-ssl start
        /usr/sbin/pop3d start
        /usr/sbin/pop3d-ssl start
        sleep infinity &
        wait"
    wait_tls_port courier "$COURIER_IMAPS_PORT"
    wait_tls_port courier "$COURIER_IMAP_PORT" imap
    wait_tls_port courier "$COURIER_POP3S_PORT"
    wait_tls_port courier "$COURIER_POP3_PORT" pop3
    release_ports
}

# courier_fam on|off : whether Courier's imapd finds gamin's gam_server.
courier_fam() {
    if [[ $1 == on ]]; then ln -sfn "$COURIER_ROOT/usr/libexec/gam_server" "$WORK/courier/fam/gam_server"
    else rm -f "$WORK/courier/fam/gam_server"; fi
}

# courier_append FILE... : APPEND to alice's INBOX (imaplib over implicit TLS).
courier_append() {
    SEED_PASSWORD=$ALICE_PW python3 "$HERE/seed_imap.py" "$INTEROP_TLS_NAME" "$COURIER_IMAPS_PORT" "$TLS/ca.pem" \
        "alice@$INTEROP_DOMAIN" INBOX "$@"
}

courier_checks() {
    local user=alice@$INTEROP_DOMAIN h=$INTEROP_TLS_NAME
    make_messages "$MSGS" courier
    echo "Courier-IMAP $COURIER_VERSION, courier-pop $COURIER_POP_VERSION"
    # First, before anything starts a gam_server: the alert Courier sends without one.
    IN_URL="imaps://$h:$COURIER_IMAPS_PORT" IN_USER=$user IN_PW=$ALICE_PW
    check courier:imaps:alert "an [ALERT] is shown to the user" in_alert "Filesystem notification initialization error"
    courier_fam on
    courier_append "$MSGS"/1.eml "$MSGS"/2.eml "$MSGS"/3.eml >"$WORK/out/courier-seed.log" 2>&1 \
        || { cat "$WORK/out/courier-seed.log" >&2; show_logs courier; die "courier: seeding alice's INBOX over IMAP failed (above)"; }
    local seeds=("$MSGS"/1.eml "$MSGS"/2.eml "$MSGS"/3.eml)
    incoming_checks courier imaps "imaps://$h:$COURIER_IMAPS_PORT" "$user" "$ALICE_PW" "${seeds[@]}"
    incoming_checks courier imap "imap://$h:$COURIER_IMAP_PORT" "$user" "$ALICE_PW" "${seeds[@]}"
    incoming_checks courier pop3s "pop3s://$h:$COURIER_POP3S_PORT" "$user" "$ALICE_PW" "${seeds[@]}"
    incoming_checks courier pop3 "pop3://$h:$COURIER_POP3_PORT" "$user" "$ALICE_PW" "${seeds[@]}"
    IN_URL="imaps://$h:$COURIER_IMAPS_PORT"
    check courier:imaps:wrong-password "a wrong password exits 77" in_wrong_password
    make_messages "$MSGS/new" courier-new
    check courier:imaps:watch "watch prints only the message that arrives" \
        in_watch courier_append "$MSGS/new/1.eml" "interop courier-new plain"
    check courier:imaps:fetch-delete "fetch --delete empties the mailbox" in_fetch_delete "$WORK/courier/deleted-imaps" 4
    courier_append "$MSGS/new/2.eml" "$MSGS/new/3.eml" >"$WORK/out/courier-seed2.log" 2>&1 \
        || { cat "$WORK/out/courier-seed2.log" >&2; die "courier: seeding alice's INBOX over IMAP failed (above)"; }
    IN_URL="pop3s://$h:$COURIER_POP3S_PORT"
    check courier:pop3s:fetch-delete "fetch --delete empties the mailbox" in_fetch_delete "$WORK/courier/deleted-pop3s" 2
}
