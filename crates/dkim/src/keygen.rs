//! Key pairs for `rostfix dkim-keygen`: Ed25519 made here with ring (PKCS#8 PEM); RSA
//! made by `openssl genpkey` (ring cannot generate RSA keys and OpenSSL is on every
//! system that has opendkim-genkey). Either way the key is then loaded back with the
//! daemons' own loader so the TXT record printed is derived from what will sign.

use crate::key::{load_key, LoadedKey};
use crate::DkimError;
use base64::Engine;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A fresh Ed25519 key as PKCS#8 PEM.
pub fn ed25519_pem() -> Result<String, DkimError> {
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| DkimError::Keygen("cannot generate an Ed25519 key".into()))?;
    Ok(pem("PRIVATE KEY", doc.as_ref()))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh RSA key of `bits` as PEM, from `openssl genpkey`.
pub fn rsa_pem(bits: u32) -> Result<String, DkimError> {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{bits}"),
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| DkimError::Keygen(format!("cannot run openssl: {e}")))?;
    if !out.status.success() {
        return Err(DkimError::Keygen(format!(
            "openssl genpkey failed ({})",
            out.status
        )));
    }
    String::from_utf8(out.stdout).map_err(|_| DkimError::Keygen("openssl wrote non-PEM".into()))
}

/// Writes `pem` to `path` with mode 0600, refusing to overwrite, and loads it back.
pub fn write_key(path: &Path, pem: &str) -> Result<LoadedKey, DkimError> {
    let name = path.display().to_string();
    let io = |source| DkimError::Io {
        path: name.clone(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(pem.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    load_key(&name)
}

/// The TXT record as a zone-file line: long values split in 255-byte strings, which
/// DNS needs (one TXT string holds at most 255 bytes).
pub fn zone_line(domain: &str, selector: &str, record: &str) -> String {
    let parts: Vec<String> = record
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "{selector}._domainkey.{domain}. IN TXT ( {} )",
        parts.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_line_splits_long_records() {
        let rec = "p=".to_string() + &"A".repeat(400);
        let line = zone_line("example.com", "s", &rec);
        assert!(line.starts_with("s._domainkey.example.com. IN TXT ( \""));
        assert_eq!(line.matches('"').count(), 4);
    }

    #[test]
    fn generated_keys_load_and_publish() {
        let dir = std::env::temp_dir().join(format!("dkim-keygen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ed = write_key(&dir.join("ed.private"), &ed25519_pem().unwrap()).unwrap();
        assert!(ed.txt_record().starts_with("v=DKIM1; k=ed25519; p="));
        // Refuses to overwrite an existing key.
        assert!(write_key(&dir.join("ed.private"), "x").is_err());
        let rsa = write_key(&dir.join("rsa.private"), &rsa_pem(2048).unwrap()).unwrap();
        // SubjectPublicKeyInfo DER of a 2048-bit key starts MIIB.
        assert!(rsa.txt_record().starts_with("v=DKIM1; k=rsa; p=MIIB"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_of_another_user_is_refused() {
        let dir = std::env::temp_dir().join(format!("dkim-owner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k");
        write_key(&p, &ed25519_pem().unwrap()).unwrap();
        if nix::unistd::geteuid().is_root() {
            // nobody's key: not root's, not ours.
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            let e = load_key(p.to_str().unwrap()).unwrap_err();
            assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unsafe_key_mode_is_refused() {
        let dir = std::env::temp_dir().join(format!("dkim-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k");
        std::fs::write(&p, ed25519_pem().unwrap()).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let e = load_key(p.to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
