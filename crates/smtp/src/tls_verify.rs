//! The smtp client's certificate check: a [`Recorder`] per connection judges the
//! peer's chain against the connection's policy (CA roots and match names, or TLSA
//! records at the DANE levels) and records Postfix's verdict (Untrusted, Trusted,
//! Verified) without ever failing the handshake; the session enforces the level later.
//!
//! rustls resumes a session only under the very verifier object that made it, so the
//! `ClientConfig`s (and their verifier, [`Dispatch`]) live as long as the process and
//! the per-connection Recorder is reached through a thread-local slot set for the
//! duration of the handshake (rustls calls the verifier on the handshaking thread).
//! A resumed session calls no verifier at all: [`Recorder::recheck`] then judges the
//! chain rustls kept with the session, so a session made under a weaker policy grants
//! nothing under a stricter one.

use crate::dane::Tlsa;
use crate::tls::Trust;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

thread_local! {
    /// The Recorder of the handshake running on this thread, if any.
    static CURRENT: RefCell<Option<Arc<Recorder>>> = const { RefCell::new(None) };
}

/// Judges and records, never refuses: the level decides later what a verdict means.
#[derive(Debug)]
pub struct Recorder {
    inner: Option<Arc<WebPkiServerVerifier>>,
    /// Usable TLSA records at the DANE levels.
    dane: Option<Arc<Vec<Tlsa>>>,
    names: Vec<ServerName<'static>>,
    verdict: Mutex<Trust>,
    provider: Arc<CryptoProvider>,
}

impl Recorder {
    pub fn new(
        inner: Option<Arc<WebPkiServerVerifier>>,
        dane: Option<Arc<Vec<Tlsa>>>,
        names: Vec<ServerName<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Recorder {
        Recorder {
            inner,
            dane,
            names,
            verdict: Mutex::new(Trust::Untrusted),
            provider,
        }
    }

    /// The verdict on the last certificate judged (Untrusted until one is).
    pub fn trust(&self) -> Trust {
        self.verdict.lock().map(|t| *t).unwrap_or(Trust::Untrusted)
    }

    /// Makes this Recorder the one [`Dispatch`] consults on this thread until the
    /// returned guard is dropped.
    pub fn activate(self: &Arc<Self>) -> Active {
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
        Active(())
    }

    /// Judges a resumed session's certificate chain as a new handshake's would be.
    pub fn recheck(&self, chain: &[CertificateDer<'static>]) {
        match chain.split_first() {
            Some((end_entity, intermediates)) => {
                self.judge(end_entity, intermediates, &[], UnixTime::now())
            }
            None => self.set(Trust::Untrusted),
        }
    }

    fn set(&self, trust: Trust) {
        if let Ok(mut v) = self.verdict.lock() {
            *v = trust;
        }
    }

    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        ocsp: &[u8],
        now: UnixTime,
    ) {
        let mut trust = Trust::Untrusted;
        if let Some(records) = &self.dane {
            if crate::dane_verify::verified(
                records,
                end_entity,
                intermediates,
                &self.names,
                now,
                &self.provider,
            ) {
                trust = Trust::Verified;
            }
        } else if let Some(v) = &self.inner {
            // webpki checks the chain before the name, so a name error means the chain
            // itself was good: Postfix's "Trusted".
            let fallback = [ServerName::try_from("invalid.invalid").expect("static name")];
            let names = if self.names.is_empty() {
                &fallback[..]
            } else {
                &self.names[..]
            };
            for name in names {
                match v.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
                    Ok(_) if !self.names.is_empty() => {
                        trust = Trust::Verified;
                        break;
                    }
                    Ok(_) => trust = Trust::Trusted,
                    Err(rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. },
                    )) => trust = Trust::Trusted,
                    Err(_) => {}
                }
            }
        }
        self.set(trust);
    }
}

/// Clears this thread's Recorder slot when dropped (also on an error path).
pub struct Active(());

impl Drop for Active {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// The verifier every connection's `ClientConfig` shares: certificate judgement goes
/// to the thread's active Recorder; handshake signatures are always checked for real
/// (a peer must own its key).
#[derive(Debug)]
pub struct Dispatch {
    pub provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Dispatch {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        CURRENT.with(|c| {
            if let Some(recorder) = c.borrow().as_ref() {
                recorder.judge(end_entity, intermediates, ocsp, now);
            }
        });
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
