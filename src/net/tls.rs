//! TLS configuration with rustls (ring provider: builds with the C compiler every machine has, no cmake): PEM
//! certificates and keys (PKCS#8, PKCS#1, SEC1, and encrypted PKCS#8 with a passphrase), an extra CA chain, and
//! certificates chosen by the client's server name (exact names and `*.example.com` wildcards).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One certificate with its key, as the application gives them.
pub struct CertSpec {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub passphrase: Option<String>,
    /// More certificates appended to the chain.
    pub ca_pem: Option<Vec<u8>>,
}

pub struct HostSpec {
    pub names: Vec<String>,
    pub cert: CertSpec,
}

pub struct TlsOptions {
    /// The certificate for any name no host matches (sack's top-level `cert`/`key`).
    pub default: Option<CertSpec>,
    pub hosts: Vec<HostSpec>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_key(pem: &[u8], passphrase: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "cannot read the private key PEM: not text".to_string())?;
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let passphrase = passphrase.ok_or("the private key is encrypted: a passphrase is needed")?;
        let (_, document) = pkcs8::SecretDocument::from_pem(text).map_err(|e| format!("cannot read the encrypted private key PEM: {e}"))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes())
            .map_err(|e| format!("cannot read the encrypted private key: {e}"))?;
        let plain = encrypted.decrypt(passphrase).map_err(|_| "wrong passphrase for the private key".to_string())?;
        return Ok(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec()).into());
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("the private key uses legacy PEM encryption; convert it to encrypted PKCS#8 (openssl pkcs8 -topk8)".into());
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("cannot read the private key PEM: {e}"))
}

fn load_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| format!("cannot read the {what} PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in the {what} PEM"));
    }
    Ok(certs)
}

/// Loads a certificate chain and its key, checking that they belong together.
pub fn certified_key(spec: &CertSpec) -> Result<Arc<CertifiedKey>, String> {
    let mut chain = load_certs(&spec.cert_pem, "certificate")?;
    if let Some(ca) = &spec.ca_pem {
        chain.extend(load_certs(ca, "ca")?);
    }
    let key = load_key(&spec.key_pem, spec.passphrase.as_deref())?;
    CertifiedKey::from_der(chain, key, &provider()).map(Arc::new).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => "the private key does not match the certificate".to_string(),
        other => format!("unusable private key: {other}"),
    })
}

/// Chooses the certificate by the server name the client asked for.
#[derive(Debug)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the suffix after `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    pub fn find(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let found = name.map(str::to_ascii_lowercase).and_then(|name| {
            self.exact.get(&name).cloned().or_else(|| name.split_once('.').and_then(|(_, parent)| self.wildcard.get(parent).cloned()))
        });
        found.or_else(|| self.default.clone())
    }

    /// Whether a name has a certificate of its own (not just the default).
    pub fn knows(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.exact.contains_key(&name) || name.split_once('.').is_some_and(|(_, parent)| self.wildcard.contains_key(parent))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.find(hello.server_name())
    }
}

/// The rustls configuration for a server: TLS 1.2 and 1.3, rustls's default (modern) cipher suites.
pub fn server_config(options: &TlsOptions) -> Result<(Arc<rustls::ServerConfig>, Arc<SniResolver>), String> {
    let mut resolver = SniResolver { exact: HashMap::new(), wildcard: HashMap::new(), default: None };
    if let Some(spec) = &options.default {
        resolver.default = Some(certified_key(spec)?);
    }
    for host in &options.hosts {
        let key = certified_key(&host.cert)?;
        // sack also joins several names with `~`.
        for name in host.names.iter().flat_map(|n| n.split('~')).map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()) {
            match name.strip_prefix("*.") {
                Some(parent) => resolver.wildcard.insert(parent.to_string(), key.clone()),
                None => resolver.exact.insert(name, key.clone()),
            };
        }
    }
    if resolver.default.is_none() && resolver.exact.is_empty() && resolver.wildcard.is_empty() {
        return Err("TLS needs a certificate: give cert and key, or hosts".into());
    }
    let resolver = Arc::new(resolver);
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), resolver))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> (String, String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem(), key)
    }

    fn spec(cert: &str, key: &str) -> CertSpec {
        CertSpec { cert_pem: cert.as_bytes().to_vec(), key_pem: key.as_bytes().to_vec(), passphrase: None, ca_pem: None }
    }

    #[test]
    fn loads_matching_keys_and_refuses_mismatched_ones() {
        let (cert_a, key_a, _) = self_signed(&["a.test"]);
        let (_, key_b, _) = self_signed(&["b.test"]);
        assert!(certified_key(&spec(&cert_a, &key_a)).is_ok());
        assert_eq!(certified_key(&spec(&cert_a, &key_b)).unwrap_err(), "the private key does not match the certificate");
        assert!(certified_key(&spec("junk", &key_a)).unwrap_err().contains("no certificate"));
        assert!(certified_key(&spec(&cert_a, "junk")).unwrap_err().contains("private key PEM"));
    }

    #[test]
    fn resolves_exact_wildcard_and_default_names() {
        let (cert_a, key_a, _) = self_signed(&["a.test"]);
        let (cert_w, key_w, _) = self_signed(&["*.w.test"]);
        let (cert_d, key_d, _) = self_signed(&["default.test"]);
        let options = TlsOptions {
            default: Some(spec(&cert_d, &key_d)),
            hosts: vec![
                HostSpec { names: vec!["A.test~alias.test".into()], cert: spec(&cert_a, &key_a) },
                HostSpec { names: vec!["*.w.test".into()], cert: spec(&cert_w, &key_w) },
            ],
        };
        let (_, resolver) = server_config(&options).unwrap();
        let a = resolver.find(Some("a.test")).unwrap();
        assert!(Arc::ptr_eq(&a, &resolver.find(Some("alias.test")).unwrap()));
        let w = resolver.find(Some("x.w.test")).unwrap();
        assert!(!Arc::ptr_eq(&a, &w));
        assert!(resolver.knows("x.w.test") && !resolver.knows("w.test") && !resolver.knows("other.test"));
        assert!(Arc::ptr_eq(&resolver.find(Some("other.test")).unwrap(), resolver.default.as_ref().unwrap()));
        let no_default = TlsOptions { default: None, hosts: vec![HostSpec { names: vec!["a.test".into()], cert: spec(&cert_a, &key_a) }] };
        assert!(server_config(&no_default).unwrap().1.find(Some("other.test")).is_none());
    }
}
