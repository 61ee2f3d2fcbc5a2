//! Inputs shared by the benchmarks: realistic server byte streams, built deterministically; and
//! the end-to-end benches' way to a release build of mailcat.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this package is `benches/` in it).
pub fn workspace() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The value of the one optional `--FLAG N` a bench takes (`default` without it); `N` must be
/// at least `min`. Anything else is the `usage` line as an error.
pub fn numeric_flag(flag: &str, default: u64, min: u64, usage: &str) -> Result<u64, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => Ok(default),
        [given, n] if given == flag => n
            .parse()
            .ok()
            .filter(|&n| n >= min)
            .ok_or_else(|| usage.to_string()),
        _ => Err(usage.to_string()),
    }
}

/// Builds mailcat in release mode and returns its path.
pub fn build_mailcat() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "mailcat"])
        .current_dir(workspace())
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release -p mailcat: {status}"));
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    Ok(workspace().join(target).join("release/mailcat"))
}

/// `count` FETCH responses, each with a `literal_len`-byte BODY[] literal, as Dovecot sends them.
pub fn fetch_stream(count: u32, literal_len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(literal_len);
    let line =
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
    while body.len() < literal_len {
        let take = line.len().min(literal_len - body.len());
        body.extend_from_slice(&line[..take]);
    }
    let mut out = Vec::with_capacity(count as usize * (literal_len + 80));
    for seq in 1..=count {
        out.extend_from_slice(
            format!("* {seq} FETCH (UID {} RFC822.SIZE {literal_len} FLAGS (\\Seen) BODY[] {{{literal_len}}}\r\n", seq + 1000)
                .as_bytes(),
        );
        out.extend_from_slice(&body);
        out.extend_from_slice(b")\r\n");
    }
    out
}

/// `count` FETCH responses with a multipart BODYSTRUCTURE and an ENVELOPE each (a mail client's
/// message-list refresh).
pub fn bodystructure_stream(count: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for seq in 1..=count {
        out.extend_from_slice(format!(
            "* {seq} FETCH (UID {uid} FLAGS (\\Seen $Forwarded) RFC822.SIZE 48213 \
ENVELOPE (\"Tue, 24 Nov 2026 10:01:02 +0100\" \"Quarterly report {seq}\" \
((\"Ann Example\" NIL \"ann\" \"example.com\")) ((\"Ann Example\" NIL \"ann\" \"example.com\")) \
((\"Ann Example\" NIL \"ann\" \"example.com\")) ((NIL NIL \"bob\" \"example.org\")(\"Carol\" NIL \"carol\" \"example.net\")) \
NIL NIL NIL \"<msg{seq}@example.com>\") \
BODYSTRUCTURE (((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 1234 40 NIL NIL NIL NIL)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 5678 120 NIL NIL NIL NIL) \"ALTERNATIVE\" \
(\"BOUNDARY\" \"b2_{seq}\") NIL NIL NIL)\
(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") NIL NIL \"BASE64\" 40000 NIL (\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\")) NIL NIL) \
\"MIXED\" (\"BOUNDARY\" \"b1_{seq}\") NIL NIL NIL))\r\n",
            uid = seq + 5000
        ).as_bytes());
    }
    out
}

/// A Gmail-like EHLO reply.
pub fn ehlo_reply() -> Vec<u8> {
    b"250-smtp.gmail.com at your service, [192.0.2.1]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n\
250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n250-ENHANCEDSTATUSCODES\r\n\
250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"
        .to_vec()
}

/// A POP3 RETR reply: `+OK`, a dot-stuffed body of about `len` bytes, the terminator.
pub fn pop3_retr(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    out.extend_from_slice(format!("+OK {len} octets\r\n").as_bytes());
    let lines: [&[u8]; 3] = [
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n",
        b"..a line that began with a dot, stuffed by the server\r\n",
        b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n",
    ];
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(lines[i % 3]);
        i += 1;
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// What the peer benches (`peer_*` binaries, run by `benches/run-peers.sh`) share: the lab's
/// address, account and CA from `tests/lab/lab.sh env`, a rustls configuration that trusts
/// only the lab's CA, and the one line each prints for the harness to verify.
pub mod peer {
    use std::sync::Arc;

    /// The lab as the peer benches reach it, from the `MAILCAT_LAB_*` variables.
    #[derive(Debug, Clone)]
    pub struct Lab {
        /// The address to connect to.
        pub host: String,
        /// The name the lab's certificates are issued to.
        pub tls_name: String,
        /// The lab's CA certificate (PEM).
        pub ca_file: String,
        /// The password of the bench users.
        pub password: String,
        /// IMAP over implicit TLS.
        pub imaps: u16,
        /// POP3 over implicit TLS.
        pub pop3s: u16,
        /// SMTP submission over implicit TLS.
        pub submissions: u16,
    }

    fn var(name: &str) -> Result<String, String> {
        std::env::var(name)
            .map_err(|_| format!("{name} is not set: eval \"$(tests/lab/lab.sh env)\""))
    }

    fn port(name: &str) -> Result<u16, String> {
        var(name)?
            .parse()
            .map_err(|_| format!("{name} is not a port"))
    }

    impl Lab {
        /// Reads the lab from the environment.
        pub fn from_env() -> Result<Self, String> {
            Ok(Self {
                host: var("MAILCAT_LAB_HOST")?,
                tls_name: var("MAILCAT_LAB_TLS_NAME")?,
                ca_file: var("MAILCAT_LAB_CA_FILE")?,
                password: var("MAILCAT_LAB_BENCH_PASSWORD")?,
                imaps: port("MAILCAT_LAB_IMAPS_PORT")?,
                pop3s: port("MAILCAT_LAB_POP3S_PORT")?,
                submissions: port("MAILCAT_LAB_SUBMISSIONS_PORT")?,
            })
        }

        /// A rustls client configuration (ring) trusting the lab's CA only.
        pub fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
            use rustls_pki_types::pem::PemObject;
            use rustls_pki_types::CertificateDer;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&self.ca_file)
                .map_err(|e| format!("{}: {e}", self.ca_file))?
            {
                let cert = cert.map_err(|e| format!("{}: {e}", self.ca_file))?;
                roots.add(cert).map_err(|e| e.to_string())?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        }

        /// The server name the certificates carry.
        pub fn server_name(&self) -> Result<rustls_pki_types::ServerName<'static>, String> {
            rustls_pki_types::ServerName::try_from(self.tls_name.clone()).map_err(|e| e.to_string())
        }
    }

    /// The arguments after the program name.
    pub fn args() -> Vec<String> {
        std::env::args().skip(1).collect()
    }

    /// The line the harness reads: how many messages and how many message bytes moved.
    pub fn report(messages: usize, bytes: u64) {
        println!("messages={messages} bytes={bytes}");
    }

    /// Runs `main` and exits 1 with its error on stderr.
    pub fn exit_on_error(name: &str, result: Result<(), String>) {
        if let Err(e) = result {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }

    /// What the mailcat peer binaries (one per protocol) share: the lab's server for
    /// `protocol` over implicit TLS, TLS settings trusting the lab's CA only, and a minute's
    /// timeouts.
    #[derive(Debug)]
    pub struct MailcatPeer {
        /// The lab.
        pub lab: Lab,
        /// The server.
        pub endpoint: mailcat_transport::Endpoint,
        /// Trusting the lab's CA only.
        pub tls: mailcat_transport::TlsSettings,
        /// A minute for every step.
        pub timeouts: mailcat_transport::Timeouts,
    }

    impl MailcatPeer {
        /// A password credential of `user` (the bench users share one password).
        pub fn credential(&self, user: &str) -> mailcat_session::Credential {
            mailcat_session::Credential::password(user, self.lab.password.as_bytes())
        }
    }

    /// The frame of a mailcat peer binary: runs `job` with the lab and the arguments on a
    /// current-thread runtime (as every peer runs), prints what it moved, or exits 1 with its
    /// error.
    pub fn run_mailcat<F, Fut>(name: &str, protocol: mailcat_transport::Protocol, job: F)
    where
        F: FnOnce(MailcatPeer, Vec<String>) -> Fut,
        Fut: std::future::Future<Output = Result<(usize, u64), String>>,
    {
        use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
        let result = (|| {
            let lab = Lab::from_env()?;
            let port = match protocol {
                Protocol::Imap => lab.imaps,
                Protocol::Pop3 => lab.pop3s,
                Protocol::Smtp => lab.submissions,
            };
            let peer = MailcatPeer {
                endpoint: Endpoint::new(protocol, &lab.host, Security::ImplicitTls).with_port(port),
                tls: TlsSettings::only_ca_file(&lab.ca_file),
                timeouts: Timeouts::uniform(std::time::Duration::from_secs(60)),
                lab,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let (messages, bytes) = runtime.block_on(job(peer, args()))?;
            report(messages, bytes);
            Ok(())
        })();
        exit_on_error(name, result);
    }
}
