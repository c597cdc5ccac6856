//! HTTPS receivers end to end: the real `tocsin run` binary posting to a webhook behind a
//! TLS server on 127.0.0.1 whose certificate is signed by a test CA that the daemon trusts
//! through `SSL_CERT_FILE` (the system trust store's override). One server speaks only
//! TLS 1.3, one only TLS 1.2, so both protocol versions of the one crypto provider are
//! exercised; the TLS servers forward the decrypted requests to a plain [`Recorder`]. The
//! certificates come from the `openssl` binary (Debian package `openssl`).

use crate::common;
use crate::common::recorder;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use recorder::Recorder;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const S10: Duration = Duration::from_secs(10);

const RULE: &str =
    "      - alert: DiskFull\n        expr: disk_used\n        tiers: [{ severity: critical, above: 90 }]\n";

/// Runs `openssl args` in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a server certificate for `localhost` and 127.0.0.1 signed by it
/// (`server.pem`, key `server.key`) in `dir`; `None` when openssl is missing and `CI` unset.
fn certificates(dir: &Path) -> Option<()> {
    peers::binary(("/usr/bin/openssl", "openssl"))?;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=tocsin test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        ]
        .concat(),
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName = DNS:localhost, IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    Some(())
}

/// A TLS server on a free port speaking only `version`, forwarding every connection's
/// plain bytes to 127.0.0.1:`upstream`. Runs until the test process ends.
fn tls_forwarder(dir: &Path, version: &'static rustls::SupportedProtocolVersion, upstream: u16) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A handshake the client aborts ends this connection only.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    port
}

/// The `last_error` of `receiver`'s outbox row, once there is one.
fn last_error(env: &Env, receiver: &str) -> Option<String> {
    let db = rusqlite::Connection::open_with_flags(
        env.path().join("data/tocsin.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    db.query_row(
        "SELECT last_error FROM outbox WHERE receiver = ?1 AND last_error IS NOT NULL",
        [receiver],
        |r| r.get(0),
    )
    .ok()
}

#[test]
fn a_webhook_over_https_receives_the_alert_with_tls_1_3_and_tls_1_2() {
    let certs = tempfile::tempdir().unwrap();
    if certificates(certs.path()).is_none() {
        return;
    }
    let hook = Recorder::start();
    let tls13 = tls_forwarder(certs.path(), &rustls::version::TLS13, hook.port);
    let tls12 = tls_forwarder(certs.path(), &rustls::version::TLS12, hook.port);
    let env = Env::pushed(
        "",
        &format!(
            "receivers:\n  - name: v13\n    webhook: {{ url: \"https://localhost:{tls13}/v13\" }}\n  - name: v12\n    webhook: {{ url: \"https://127.0.0.1:{tls12}/v12\" }}\nroutes:\n  - receivers: [v13, v12]\n"
        ),
        RULE,
    );
    let d = env.spawn_with_env(&[], &[("SSL_CERT_FILE", &certs.path().join("ca.pem"))]);
    assert_eq!(d.push("disk_used{mount=\"/data\"} 95\n").status, 200);
    d.wait_alert("DiskFull", "firing", S10);
    for path in ["/v13", "/v12"] {
        let got = hook.wait_ok(path, 1, S10);
        let body = got[0].json();
        assert_eq!(body["alerts"][0]["labels"]["alertname"], "DiskFull", "{path}: {body}");
    }
}

#[test]
fn a_webhook_whose_certificate_the_daemon_does_not_trust_is_not_sent_to() {
    let certs = tempfile::tempdir().unwrap();
    if certificates(certs.path()).is_none() {
        return;
    }
    let hook = Recorder::start();
    let port = tls_forwarder(certs.path(), &rustls::version::TLS13, hook.port);
    let env = Env::pushed(
        "",
        &format!(
            "receivers:\n  - name: v13\n    retry_backoff: 100ms\n    webhook: {{ url: \"https://localhost:{port}/v13\" }}\nroutes:\n  - receivers: [v13]\n"
        ),
        RULE,
    );
    // Trusting the server's own certificate as a CA is not trusting the CA that signed it.
    let d = env.spawn_with_env(&[], &[("SSL_CERT_FILE", &certs.path().join("server.pem"))]);
    assert_eq!(d.push("disk_used{mount=\"/data\"} 95\n").status, 200);
    d.wait_alert("DiskFull", "firing", S10);
    // The attempt fails in the handshake and is kept for a retry, saying why.
    let error = wait_for(S10, || last_error(&env, "v13"))
        .unwrap_or_else(|| panic!("no failed attempt; stderr:\n{}", d.stderr()));
    assert!(error.contains("certificate"), "{error}");
    assert!(hook.requests("/v13").is_empty(), "{:?}", hook.requests("/v13"));
}
