# exim.sh -- Exim 4 (Debian's exim4-daemon-light) as a submission server: STARTTLS on
# BASE+587 and implicit TLS on BASE+465, AUTH PLAIN/LOGIN only after TLS, delivery into
# Maildirs under $WORK/exim/mail/LOCALPART/Maildir; BASE+588 (STARTTLS) offers only AUTH
# CRAM-MD5, as old installations do. Sourced by run.sh.

# The libraries they need that are not installed are added by extract_root (missing_libs).
EXIM_PACKAGES=(exim4-daemon-light)

# exim_prepare : download and unpack the packages (cached), check the binary's libraries.
exim_prepare() {
    EXIM_ROOT=$(extract_root exim "${EXIM_PACKAGES[@]}") || exit 1
    require_libs "$EXIM_ROOT" usr/sbin/exim4
    EXIM_VERSION=$(deb_version "$EXIM_ROOT" exim4-daemon-light)
}

exim_up() {
    local d=$WORK/exim root etc
    exim_prepare
    root=$EXIM_ROOT
    mkdir -p "$d"/{log,spool,mail,etc/exim4}
    chmod 0755 "$d" "$d/mail"
    # The binary looks up its compiled-in user Debian-exim before reading any configuration,
    # and accepts a -C configuration as root only if /etc/exim4/trusted_configs lists it:
    # both live in the namespace's /etc only (an overlay of $d/etc on /etc).
    etc=$d/etc
    etc_overlay_dir "$etc"
    echo "Debian-exim:x:$(id -u mail):$(id -g mail):Exim (interop):/nonexistent:/usr/sbin/nologin" >>"$etc/passwd"
    echo "Debian-exim:x:$(id -g mail):" >>"$etc/group"
    echo "$d/exim.conf" >"$etc/exim4/trusted_configs"
    chown -R mail:mail "$d/spool" "$d/mail" "$d/log"
    # The users: one "LOCALPART:PASSWORD" a line, read by the authenticators.
    printf '%s:%s\n' "alice@$INTEROP_DOMAIN" "$ALICE_PW" "bob@$INTEROP_DOMAIN" "$BOB_PW" >"$d/passwd"
    chmod 0644 "$d/passwd"

    pick_ports exim 465 587 588
    EXIM_SUBMISSION_PORT=$((BASE + 587)) EXIM_SUBMISSIONS_PORT=$((BASE + 465)) EXIM_CRAM_PORT=$((BASE + 588))
    cat >"$d/exim.conf" <<EOF
# mailcat interop: Exim as a submission server on loopback (tests/interop/exim.sh)
primary_hostname = $INTEROP_TLS_NAME
exim_user = mail
exim_group = mail
never_users = root
spool_directory = $d/spool
log_file_path = $d/log/%slog
local_interfaces = <; $INTEROP_HOST
daemon_smtp_ports = $EXIM_SUBMISSION_PORT : $EXIM_SUBMISSIONS_PORT : $EXIM_CRAM_PORT
tls_on_connect_ports = $EXIM_SUBMISSIONS_PORT
tls_certificate = $TLS/server-chain.pem
tls_privatekey = $TLS/server.key
tls_advertise_hosts = *
# AUTH only over TLS, as a real submission server.
auth_advertise_hosts = \${if eq{\$tls_in_cipher}{}{}{*}}
domainlist local_domains = $INTEROP_DOMAIN
acl_smtp_rcpt = acl_check_rcpt
message_size_limit = 50M
keep_environment =
host_lookup =
rfc1413_hosts =
queue_run_in_order = false

begin acl
acl_check_rcpt:
  require message = authentication required
          authenticated = *
  accept  domains = +local_domains
  deny    message = relaying denied

begin routers
local_users:
  driver = accept
  domains = +local_domains
  local_parts = alice : bob
  transport = maildir_delivery

begin transports
maildir_delivery:
  driver = appendfile
  # \$local_part is tainted (it came from the network): Exim 4.94+ refuses it in a path.
  directory = $d/mail/\${local_part_data}/Maildir
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  user = mail
  group = mail
  mode = 0600

begin retry
*   *   F,1m,10s

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if eq{\$auth3}{\${lookup{\$auth2}lsearch{$d/passwd}{\$value}fail}}}
  server_set_id = \$auth2
  server_advertise_condition = \${if eq{\$received_port}{$EXIM_CRAM_PORT}{no}{yes}}
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = <| Username: | Password:
  server_condition = \${if eq{\$auth2}{\${lookup{\$auth1}lsearch{$d/passwd}{\$value}fail}}}
  server_set_id = \$auth1
  server_advertise_condition = \${if eq{\$received_port}{$EXIM_CRAM_PORT}{no}{yes}}
cram_md5:
  driver = cram_md5
  public_name = CRAM-MD5
  server_secret = \${lookup{\$auth1}lsearch{$d/passwd}{\$value}fail}
  server_set_id = \$auth1
  server_advertise_condition = \${if eq{\$received_port}{$EXIM_CRAM_PORT}{yes}{no}}
EOF
    chmod 0644 "$d/exim.conf"
    LD_LIBRARY_PATH=$(root_libpath "$root") unshare --mount --propagation private bash -c \
        "$(overlay_cmd /etc "$etc") && '$root/usr/sbin/exim4' -C '$d/exim.conf' -bV" >"$d/log/config-check" 2>&1 \
        || { cat "$d/log/config-check" >&2; die "exim: its configuration $d/exim.conf is refused (above)"; }
    log "starting Exim $EXIM_VERSION (submission $EXIM_SUBMISSION_PORT, submissions $EXIM_SUBMISSIONS_PORT)"
    # Exim re-execs /usr/sbin/exim4 (with a purged environment) for each delivery and queue
    # run: the package's /usr is laid over the system's.
    start_in_namespace exim "$d/log/daemon.out" "
        $(overlay_cmd /etc "$etc")
        $(overlay_cmd /usr "$root/usr")
        /usr/sbin/exim4 -C '$d/exim.conf' -bdf -q30s &
        wait"
    wait_tls_port exim "$EXIM_SUBMISSIONS_PORT"
    wait_tls_port exim "$EXIM_SUBMISSION_PORT" smtp
    wait_tls_port exim "$EXIM_CRAM_PORT" smtp
    release_ports
}

# ---------------------------------------------------------------------------- checks
# delivered_file MAILDIR MESSAGE-ID : the file in MAILDIR/new holding MESSAGE-ID (waits up to 10 s,
# Exim delivers in a process of its own right after the reply to DATA).
delivered_file() {
    local md=$1 id=$2 i f
    for i in $(seq 100); do
        f=$(grep -lF -- "$id" "$md"/new/* 2>/dev/null | head -1) || true
        [[ -n $f ]] && { printf '%s' "$f"; return 0; }
        sleep 0.1
    done
    return 1
}

# exim_send_one URL SEED : mailcat send SEED to alice through URL; it arrives with the bytes
# intact (Exim stores LF line ends and adds its Return-path/Envelope-to/Delivery-date/Received
# headers above the message).
exim_send_one() {
    local url=$1 seed=$2 id f
    id=$(sed -n 's/^Message-ID: \(<[^>]*>\).*/\1/p' "$seed" | tr -d '\r')
    MAILCAT_PASSWORD=$ALICE_PW MC_STDIN=$seed mc send --email "alice@$INTEROP_DOMAIN" --outgoing "$url" \
        --ca-file "$TLS/ca.pem" send "alice@$INTEROP_DOMAIN"
    want_rc 0 || return 1
    f=$(delivered_file "$WORK/exim/mail/alice/Maildir" "$id") \
        || fail_because "the message $id did not arrive in $WORK/exim/mail/alice/Maildir/new within 10 s (see $WORK/exim/log/mainlog)" || return 1
    # What Exim added is a block of headers before the message's first line.
    cmp -s <(tail -c "$(lf "$seed" | wc -c)" "$f") <(lf "$seed") \
        || fail_because "$f does not end with the bytes of $seed (LF line ends): $(diff <(tail -c "$(lf "$seed" | wc -c)" "$f") <(lf "$seed") | head -5)"
}

exim_check_ok() {
    MAILCAT_PASSWORD=$ALICE_PW mc check --email "alice@$INTEROP_DOMAIN" --outgoing "$1" --ca-file "$TLS/ca.pem" check
    want_rc 0 && want_out 'login' && want_out 'All checks passed'
}

exim_wrong_password() {
    MAILCAT_PASSWORD=not-the-password MC_STDIN=$MSGS/1.eml mc send --email "alice@$INTEROP_DOMAIN" \
        --outgoing "$1" --ca-file "$TLS/ca.pem" send "alice@$INTEROP_DOMAIN"
    want_rc 77
}

# send -t with a Bcc: both recipients get it, the Bcc header reaches neither.
exim_bcc() {
    local seed=$MSGS/bcc.eml id=$1 f
    { printf 'From: alice@%s\r\nTo: alice@%s\r\nBcc: bob@%s\r\nSubject: interop bcc\r\nMessage-ID: %s\r\n\r\nbcc body\r\n' \
        "$INTEROP_DOMAIN" "$INTEROP_DOMAIN" "$INTEROP_DOMAIN" "$id"; } >"$seed"
    MAILCAT_PASSWORD=$ALICE_PW MC_STDIN=$seed mc send-t --email "alice@$INTEROP_DOMAIN" \
        --outgoing "smtp://$INTEROP_TLS_NAME:$EXIM_SUBMISSION_PORT" --ca-file "$TLS/ca.pem" send -t
    want_rc 0 || return 1
    for u in alice bob; do
        f=$(delivered_file "$WORK/exim/mail/$u/Maildir" "$id") || fail_because "$id did not reach $u" || return 1
        ! grep -qi '^Bcc:' "$f" || fail_because "the Bcc: header reached $u ($f)" || return 1
    done
}

exim_checks() {
    local starttls=smtp://$INTEROP_TLS_NAME:$EXIM_SUBMISSION_PORT implicit=smtps://$INTEROP_TLS_NAME:$EXIM_SUBMISSIONS_PORT
    make_messages "$MSGS" exim
    sed 's/^Message-ID: <interop-exim-1@/Message-ID: <interop-exim-cram@/' "$MSGS/1.eml" >"$MSGS/cram.eml"
    echo "Exim $EXIM_VERSION: $starttls (STARTTLS), $implicit (implicit TLS), port $EXIM_CRAM_PORT (CRAM-MD5 only)"
    check exim:check-starttls "mailcat check, submission with STARTTLS" exim_check_ok "$starttls"
    check exim:check-tls "mailcat check, submissions (implicit TLS)" exim_check_ok "$implicit"
    check exim:send-starttls "send through STARTTLS arrives intact" exim_send_one "$starttls" "$MSGS/1.eml"
    check exim:send-tls-8bit-dots "send dot lines + 8-bit body, implicit TLS" exim_send_one "$implicit" "$MSGS/2.eml"
    check exim:send-large "send a 300 KB message" exim_send_one "$starttls" "$MSGS/3.eml"
    check exim:send-bcc "send -t: Bcc recipient served, header removed" exim_bcc "<interop-bcc-$$@example.test>"
    check exim:wrong-password "a wrong password exits 77" exim_wrong_password "$starttls"
    check exim:cram-md5:send "send where only AUTH CRAM-MD5 is offered" \
        exim_send_one "smtp://$INTEROP_TLS_NAME:$EXIM_CRAM_PORT" "$MSGS/cram.eml"
}
