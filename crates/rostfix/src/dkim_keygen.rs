//! `rostfix dkim-keygen`: makes a DKIM key pair for native signing (crates/dkim) and
//! prints the TXT record to publish with the KeyTable and SigningTable lines that
//! use it, like opendkim-genkey but checked by the loader the daemons use.

use rostfix_dkim::keygen;
use std::path::PathBuf;

/// The manual page.
pub const HELP: &str = "\
NAME
    rostfix dkim-keygen - make a DKIM signing key and its DNS record

SYNOPSIS
    rostfix dkim-keygen [-a rsa|ed25519] [-b BITS] [-D DIR] DOMAIN SELECTOR

DESCRIPTION
    Writes a new private key to DIR/SELECTOR.private (mode 0600, never
    overwriting an existing file) and prints to standard output the TXT
    record to publish at SELECTOR._domainkey.DOMAIN (in zone-file form,
    split into strings of at most 255 bytes as DNS requires), followed by
    the lines to add to the OpenDKIM-format tables named by
    rostfix_dkim_key_table and rostfix_dkim_signing_table (see docs/dkim.md).
    The key is read back with the signing daemons' own loader before the
    record is printed. Run it as root and keep the key readable by root
    only: smtpd and pickup refuse keys that group or others can read.

OPTIONS
    -a ALG    rsa (default; rsa-sha256, read by every verifier) or ed25519
              (ed25519-sha256, RFC 8463; many receivers do not verify it yet,
              so sign with both when using it).
    -b BITS   RSA key size, 2048 (default) to 4096; smaller keys are refused
              (receivers ignore them, and ring cannot sign with them).
              RSA keys are made by openssl(1) genpkey.
    -D DIR    Directory for the key file (default: the current directory).
    --help    Show this text.

EXIT STATUS
    0 success; 1 the key could not be made or written; 64 usage error.

SEE ALSO
    opendkim-genkey(8), main.cf: rostfix_dkim_key_table,
    rostfix_dkim_signing_table
";

const USAGE: &str =
    "usage: rostfix dkim-keygen [-a rsa|ed25519] [-b BITS] [-D DIR] DOMAIN SELECTOR";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    ed25519: bool,
    bits: u32,
    dir: PathBuf,
    domain: String,
    selector: String,
}

/// None: --help.
fn parse(args: &[String]) -> Result<Option<Request>, String> {
    let mut req = Request {
        ed25519: false,
        bits: 2048,
        dir: PathBuf::from("."),
        domain: String::new(),
        selector: String::new(),
    };
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |opt: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("option {opt} requires a value"))
        };
        match a.as_str() {
            "--help" => return Ok(None),
            "-a" => {
                req.ed25519 = match value("-a")?.as_str() {
                    "rsa" => false,
                    "ed25519" => true,
                    other => return Err(format!("unknown algorithm: {other}")),
                }
            }
            "-b" => {
                req.bits = value("-b")?
                    .parse()
                    .ok()
                    .filter(|b| (2048..=4096).contains(b))
                    .ok_or("-b: RSA key size must be 2048 to 4096")?
            }
            "-D" => req.dir = PathBuf::from(value("-D")?),
            w if w.starts_with('-') => return Err(format!("unknown option: {w}")),
            w => words.push(w.to_string()),
        }
    }
    let [domain, selector] = words.as_slice() else {
        return Err("expected DOMAIN and SELECTOR".to_string());
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let label_ok = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if !label_ok(domain) || !label_ok(selector) {
        return Err("DOMAIN and SELECTOR must be DNS names".to_string());
    }
    req.domain = domain.to_ascii_lowercase();
    req.selector = selector.to_string();
    Ok(Some(req))
}

/// Runs the command; the exit status.
pub fn main(args: &[String]) -> i32 {
    let req = match parse(args) {
        Ok(Some(r)) => r,
        Ok(None) => {
            print!("{HELP}");
            return 0;
        }
        Err(e) => {
            eprintln!("rostfix dkim-keygen: {e}\n{USAGE}");
            return 64;
        }
    };
    match run(&req) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rostfix dkim-keygen: fatal: {e}");
            1
        }
    }
}

fn run(req: &Request) -> Result<(), rostfix_dkim::DkimError> {
    let pem = if req.ed25519 {
        keygen::ed25519_pem()?
    } else {
        keygen::rsa_pem(req.bits)?
    };
    let dir = std::fs::canonicalize(&req.dir).map_err(|source| rostfix_dkim::DkimError::Io {
        path: req.dir.display().to_string(),
        source,
    })?;
    let path = dir.join(format!("{}.private", req.selector));
    let key = keygen::write_key(&path, &pem)?;
    let (d, s) = (&req.domain, &req.selector);
    println!("; private key: {} (mode 0600)", path.display());
    println!("; publish in DNS:");
    println!("{}", keygen::zone_line(d, s, &key.txt_record()));
    println!("; rostfix_dkim_key_table line:");
    println!("{s}._domainkey.{d} {d}:{s}:{}", path.display());
    println!("; rostfix_dkim_signing_table line (refile: table):");
    println!("*@{d} {s}._domainkey.{d}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<Request>, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn command_lines() {
        let r = p(&["-a", "ed25519", "-D", "/k", "Example.COM.", "s1"])
            .unwrap()
            .unwrap();
        assert!(r.ed25519);
        assert_eq!(r.domain, "example.com");
        assert_eq!(r.dir, PathBuf::from("/k"));
        assert_eq!(p(&["--help"]).unwrap(), None);
        assert!(p(&["-b", "1024", "e.com", "s"]).is_err());
        assert!(p(&["e.com"]).is_err());
        assert!(p(&["e.com", "s", "x"]).is_err());
        assert!(p(&["-a", "dsa", "e.com", "s"]).is_err());
        assert!(p(&["e.com", "s;rm"]).is_err());
    }

    #[test]
    fn manual_page_has_the_sections() {
        for s in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "SEE ALSO",
        ] {
            assert!(
                HELP.contains(&format!("\n{s}\n")) || HELP.starts_with(s),
                "{s}"
            );
        }
    }
}
