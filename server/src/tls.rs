//! The server's TLS identity: a certificate chain and its key, from PEM files or a self-signed
//! development certificate kept in the data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The file name of the development certificate inside the data directory; clients pass it as
/// their CA (`chatroom --ca ./chatroom-data/dev-cert.pem`).
pub const DEV_CERT_FILE: &str = "dev-cert.pem";
/// The file name of the development certificate's private key inside the data directory.
pub const DEV_KEY_FILE: &str = "dev-key.pem";

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct TlsIdentity {
    /// The chain, leaf first.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

/// Why a TLS identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what} from {path}: {source}")]
    Pem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The reason.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    /// The data directory or a file in it could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The self-signed certificate could not be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsIdentity {
    /// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|source| TlsError::Pem { what: "certificate", path: cert.into(), source })?;
        if cert_chain.is_empty() {
            return Err(TlsError::NoCertificate(cert.into()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
            what: "private key",
            path: key.into(),
            source,
        })?;
        Ok(Self { cert_chain, key })
    }

    /// A new self-signed certificate for `localhost` and `127.0.0.1`, in memory only.
    pub fn self_signed() -> Result<Self, TlsError> {
        let (cert_pem, key_pem) = generate_self_signed()?;
        Self::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())
    }

    /// The development identity in `data_dir`: loaded if [`DEV_CERT_FILE`] and [`DEV_KEY_FILE`]
    /// exist, otherwise generated (self-signed, for `localhost` and `127.0.0.1`) and written
    /// there. Returns the identity and the certificate's path, for clients to trust.
    pub fn dev_identity(data_dir: &Path) -> Result<(Self, PathBuf), TlsError> {
        let cert_path = data_dir.join(DEV_CERT_FILE);
        let key_path = data_dir.join(DEV_KEY_FILE);
        if cert_path.exists() && key_path.exists() {
            return Ok((Self::from_pem_files(&cert_path, &key_path)?, cert_path));
        }
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Write { path, source }
        };
        std::fs::create_dir_all(data_dir).map_err(write_err(data_dir))?;
        let (cert_pem, key_pem) = generate_self_signed()?;
        write_private(&key_path, key_pem.as_bytes()).map_err(write_err(&key_path))?;
        std::fs::write(&cert_path, cert_pem.as_bytes()).map_err(write_err(&cert_path))?;
        tracing::info!(cert = %cert_path.display(), "created a self-signed development certificate");
        Ok((Self::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?, cert_path))
    }

    fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let pem_err =
            |what| move |source| TlsError::Pem { what, path: PathBuf::from("<generated>"), source };
        let cert_chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_err("certificate"))?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(pem_err("private key"))?;
        Ok(Self { cert_chain, key })
    }

    /// A rustls server configuration for this identity with the chatroom ALPN, using the ring
    /// provider and TLS 1.3 only (QUIC requires it), remembering up to `session_cache_size` TLS
    /// sessions for resumption and 0-RTT.
    pub fn server_crypto(
        &self,
        session_cache_size: usize,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![chatroom_protocol::ALPN.to_vec()];
        // TLS session resumption with 0-RTT: a reconnecting client may send its Hello (with its
        // resume request) in its first flight. rustls accepts early data only with stateful
        // resumption (not with stateless tickets), because a server-side cache lets it use
        // each ticket once: a replayed 0-RTT flight finds its ticket gone and is refused. The
        // cache is large, so resumption works for many clients, not just the last few hundred.
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(session_cache_size);
        config.send_tls13_tickets = 1;
        // QUIC requires this exact value to enable 0-RTT. Only the Hello is acted on before the
        // handshake completes; see `session.rs`.
        config.max_early_data_size = u32::MAX;
        config.send_half_rtt_data = true;
        Ok(Arc::new(config))
    }
}

fn generate_self_signed() -> Result<(String, String), TlsError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

/// Writes a file readable by its owner only (where the platform has such permissions).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_identity_is_created_once_then_reused() {
        let dir = std::env::temp_dir().join(format!("chatroom-tls-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (first, path) = TlsIdentity::dev_identity(&dir).unwrap();
        assert_eq!(path, dir.join(DEV_CERT_FILE));
        let (second, _) = TlsIdentity::dev_identity(&dir).unwrap();
        assert_eq!(first.cert_chain, second.cert_chain);
        first.server_crypto(16).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
