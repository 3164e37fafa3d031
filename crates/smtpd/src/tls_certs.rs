//! The server's certificates: smtpd_tls_chain_files (PEM files read as one stream, in
//! which each private key is followed by its certificate chain, so a key may sit in one
//! file and its chain in the next, as Postfix allows), or the older
//! smtpd_tls_cert_file / smtpd_tls_key_file pair; and tls_server_sni_maps, which picks
//! other chains by the name the client asks for (TLS SNI).
//!
//! Everything is read before confinement. An SNI table must be one whose entries can
//! be listed (texthash, hash, inline ...): its values, lists of chain files, are loaded
//! at start, since the files are outside the chroot. Postfix's tables store the PEM
//! text itself (`postmap -F`); ours store the file names, as main.cf does.
//!
//! With several keys (RSA and ECDSA, say) the first one whose algorithm the client
//! accepts is used, so old and new clients both get a chain they can verify.

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a chain or the SNI table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read certificate file {path}: {source}")]
    Cert {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    #[error("no certificate in {0}")]
    NoCert(String),
    #[error("cannot read private key file {path}: {source}")]
    Key {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    #[error("no private key before the certificate chain in {0}")]
    NoKey(String),
    #[error("unusable private key in {path}: {source}")]
    BadKey { path: String, source: rustls::Error },
    #[error("tls_server_sni_maps: {0}")]
    SniTable(#[from] rostfix_maps::MapError),
    #[error("tls_server_sni_maps: {0} cannot list its entries; use texthash, hash or inline")]
    SniUnlistable(String),
    #[error("tls_server_sni_maps: {name}: {source}")]
    SniEntry {
        name: String,
        source: Box<CertError>,
    },
}

/// A key and its chain, from `cert_path` and `key_path` (the same file for a chain file).
pub fn load_pair(
    provider: &CryptoProvider,
    cert_path: &str,
    key_path: &str,
) -> Result<Arc<CertifiedKey>, CertError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| CertError::Cert {
            path: cert_path.to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(CertError::NoCert(cert_path.to_string()));
    }
    // PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys are all accepted.
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| CertError::Key {
        path: key_path.to_string(),
        source,
    })?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| CertError::BadKey {
            path: key_path.to_string(),
            source,
        })?;
    Ok(Arc::new(CertifiedKey::new(certs, signer)))
}

/// One PEM object of a chain file, in file order.
enum Pem {
    Key(PrivateKeyDer<'static>),
    Cert(CertificateDer<'static>),
}

/// A key and the certificates that belong to it, before the key is loaded.
struct Group {
    key: Option<PrivateKeyDer<'static>>,
    certs: Vec<CertificateDer<'static>>,
    /// The key came after its certificates (a one-file "cert then key" layout): the
    /// group is complete, and a further certificate starts the next one.
    key_last: bool,
    /// Where the group's objects came from, for errors.
    files: Vec<String>,
}

impl Group {
    fn new() -> Group {
        Group {
            key: None,
            certs: Vec::new(),
            key_last: false,
            files: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.key.is_none() && self.certs.is_empty()
    }

    fn note(&mut self, file: &str) {
        if self.files.last().map(String::as_str) != Some(file) {
            self.files.push(file.to_string());
        }
    }
}

/// Splits the objects of all files, taken as one concatenated stream, into
/// (key, chain) pairs: Postfix's `key1, cert1, [chain1], key2, cert2, ...`. A file that
/// puts its certificate before its key is accepted too, as a self-contained pair.
fn group_objects(
    objects: Vec<(String, Pem)>,
) -> Result<Vec<(PrivateKeyDer<'static>, Vec<CertificateDer<'static>>)>, CertError> {
    let mut groups = Vec::new();
    let mut cur = Group::new();
    for (file, obj) in objects {
        match obj {
            Pem::Key(key) => {
                if cur.key.is_some() {
                    groups.push(std::mem::replace(&mut cur, Group::new()));
                }
                cur.key_last = !cur.certs.is_empty();
                cur.key = Some(key);
            }
            Pem::Cert(cert) => {
                if cur.key.is_some() && cur.key_last {
                    groups.push(std::mem::replace(&mut cur, Group::new()));
                }
                cur.certs.push(cert);
            }
        }
        cur.note(&file);
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    groups
        .into_iter()
        .map(|g| {
            let files = g.files.join(", ");
            match g.key {
                None => Err(CertError::NoKey(files)),
                Some(_) if g.certs.is_empty() => Err(CertError::NoCert(files)),
                Some(key) => Ok((key, g.certs)),
            }
        })
        .collect()
}

/// The chains of smtpd_tls_chain_files (or of an SNI table value): every file's PEM
/// objects in the order listed, as though the files were one.
pub fn load_chain_files(
    provider: &CryptoProvider,
    files: &[String],
) -> Result<Vec<Arc<CertifiedKey>>, CertError> {
    let mut objects = Vec::new();
    for file in files {
        let sections = <(SectionKind, Vec<u8>)>::pem_file_iter(file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|source| CertError::Cert {
                path: file.clone(),
                source,
            })?;
        for (kind, der) in sections {
            let obj = match kind {
                SectionKind::Certificate => Pem::Cert(CertificateDer::from(der)),
                _ => match PrivateKeyDer::from_pem(kind, der) {
                    Some(key) => Pem::Key(key),
                    // Parameters, CRLs and the like have no place in a chain.
                    None => continue,
                },
            };
            objects.push((file.clone(), obj));
        }
    }
    if objects.is_empty() {
        return Err(CertError::NoCert(files.join(", ")));
    }
    group_objects(objects)?
        .into_iter()
        .map(|(key, certs)| {
            let signer = provider
                .key_provider
                .load_private_key(key)
                .map_err(|source| CertError::BadKey {
                    path: files.join(", "),
                    source,
                })?;
            Ok(Arc::new(CertifiedKey::new(certs, signer)))
        })
        .collect()
}

/// Picks the chain for each handshake: by SNI name when the table has one, else the
/// default chains; among several, the first whose key the client can verify.
#[derive(Debug)]
pub struct CertResolver {
    default: Vec<Arc<CertifiedKey>>,
    /// Lower-case name (or `.parent` domain) -> chains.
    by_name: HashMap<String, Vec<Arc<CertifiedKey>>>,
}

impl CertResolver {
    pub fn new(default: Vec<Arc<CertifiedKey>>) -> CertResolver {
        CertResolver {
            default,
            by_name: HashMap::new(),
        }
    }

    /// Loads every entry of the tls_server_sni_maps tables in `spec` (Postfix list).
    pub fn with_sni_maps(
        mut self,
        provider: &CryptoProvider,
        spec: &str,
    ) -> Result<CertResolver, CertError> {
        for table in spec
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let map = rostfix_maps::open_map(table)?;
            let entries = map
                .entries()
                .ok_or_else(|| CertError::SniUnlistable(table.to_string()))??;
            for (name, value) in entries {
                let files: Vec<String> = value
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                let chains =
                    load_chain_files(provider, &files).map_err(|e| CertError::SniEntry {
                        name: name.clone(),
                        source: Box::new(e),
                    })?;
                // The first table that names a host wins, as a lookup would.
                self.by_name
                    .entry(name.trim_end_matches('.').to_ascii_lowercase())
                    .or_insert(chains);
            }
        }
        Ok(self)
    }

    /// The chains for `name`: the name itself, then `.parent` domains, as Postfix's
    /// SNI lookup tries them.
    fn chains_for(&self, name: &str) -> Option<&Vec<Arc<CertifiedKey>>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(c) = self.by_name.get(&name) {
            return Some(c);
        }
        let mut rest = name.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(c) = self.by_name.get(&format!(".{parent}")) {
                return Some(c);
            }
            rest = parent;
        }
        None
    }

    /// The chains a handshake with `server_name` gets (for tests and the resolver).
    pub fn candidates(&self, server_name: Option<&str>) -> &[Arc<CertifiedKey>] {
        server_name
            .and_then(|n| self.chains_for(n))
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let candidates = self.candidates(hello.server_name());
        let schemes = hello.signature_schemes();
        candidates
            .iter()
            .find(|ck| ck.key.choose_scheme(schemes).is_some())
            .or_else(|| candidates.first())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::sign::{Signer, SigningKey};
    use rustls::{SignatureAlgorithm, SignatureScheme};

    #[derive(Debug)]
    struct FakeKey;

    impl SigningKey for FakeKey {
        fn choose_scheme(&self, _: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
            None
        }
        fn algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::ECDSA
        }
    }

    /// A chain told apart by its one (fake) certificate byte.
    fn chain(tag: u8) -> Vec<Arc<CertifiedKey>> {
        vec![Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(vec![tag])],
            Arc::new(FakeKey),
        ))]
    }

    fn tag(chains: &[Arc<CertifiedKey>]) -> u8 {
        chains[0].cert[0].as_ref()[0]
    }

    #[test]
    fn sni_names_then_parent_domains_then_default() {
        let mut r = CertResolver::new(chain(0));
        r.by_name.insert("mail.example.com".into(), chain(1));
        r.by_name.insert(".example.org".into(), chain(2));
        assert_eq!(tag(r.candidates(Some("MAIL.example.com."))), 1);
        assert_eq!(tag(r.candidates(Some("mx.a.example.org"))), 2);
        // A parent-domain entry does not match the domain itself.
        assert_eq!(tag(r.candidates(Some("example.org"))), 0);
        assert_eq!(tag(r.candidates(Some("other.example"))), 0);
        assert_eq!(tag(r.candidates(None)), 0);
    }

    fn key(tag: u8) -> Pem {
        Pem::Key(PrivateKeyDer::Pkcs8(vec![tag].into()))
    }

    fn cert(tag: u8) -> Pem {
        Pem::Cert(CertificateDer::from(vec![tag]))
    }

    /// (key tag, cert tags) of each group.
    fn grouped(objects: Vec<(&str, Pem)>) -> Result<Vec<(u8, Vec<u8>)>, CertError> {
        let objects = objects
            .into_iter()
            .map(|(f, o)| (f.to_string(), o))
            .collect();
        Ok(group_objects(objects)?
            .into_iter()
            .map(|(k, certs)| {
                (
                    k.secret_der()[0],
                    certs.iter().map(|c| c.as_ref()[0]).collect(),
                )
            })
            .collect())
    }

    #[test]
    fn chain_files_are_one_stream_of_key_then_chain() {
        // docker-mailserver's form: the key in one file, its certificate in the next.
        assert_eq!(
            grouped(vec![("k.pem", key(1)), ("c.pem", cert(10))]).unwrap(),
            vec![(1, vec![10])]
        );
        // Two algorithms in one file, each key before its chain (with an issuer).
        assert_eq!(
            grouped(vec![
                ("a", key(1)),
                ("a", cert(10)),
                ("a", cert(11)),
                ("a", key(2)),
                ("a", cert(20)),
            ])
            .unwrap(),
            vec![(1, vec![10, 11]), (2, vec![20])]
        );
        // One file per algorithm, each holding its certificate and then its key.
        assert_eq!(
            grouped(vec![
                ("rsa", cert(10)),
                ("rsa", key(1)),
                ("ec", cert(20)),
                ("ec", key(2)),
            ])
            .unwrap(),
            vec![(1, vec![10]), (2, vec![20])]
        );
    }

    #[test]
    fn a_key_without_chain_or_a_chain_without_key_is_an_error() {
        assert!(matches!(
            grouped(vec![("k.pem", key(1))]),
            Err(CertError::NoCert(f)) if f == "k.pem"
        ));
        assert!(matches!(
            grouped(vec![("a", key(1)), ("b", key(2)), ("b", cert(20))]),
            Err(CertError::NoCert(f)) if f == "a"
        ));
        assert!(matches!(
            grouped(vec![("c.pem", cert(10))]),
            Err(CertError::NoKey(f)) if f == "c.pem"
        ));
    }

    #[test]
    fn unlistable_or_missing_tables_are_errors() {
        let p = rustls::crypto::ring::default_provider();
        assert!(matches!(
            CertResolver::new(chain(0)).with_sni_maps(&p, "regexp:/nonexistent"),
            Err(CertError::SniTable(_))
        ));
        assert!(matches!(
            CertResolver::new(chain(0)).with_sni_maps(&p, "inline:{a.example=/nonexistent.pem}"),
            Err(CertError::SniEntry { .. })
        ));
        assert!(CertResolver::new(chain(0)).with_sni_maps(&p, "").is_ok());
    }
}
