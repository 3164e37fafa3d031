//! Per-session command counts for the Postfix-style disconnect line:
//! `disconnect from host[addr] ehlo=1 mail=1 rcpt=0/1 data=1 quit=1 commands=4/5`
//! (`ok/total` where some failed, just the total where all succeeded).

/// Commands in the order Postfix prints them.
const ORDER: [&str; 11] = [
    "helo", "ehlo", "mail", "rcpt", "data", "rset", "noop", "vrfy", "help", "quit", "unknown",
];

/// Success and total counts per command name.
#[derive(Debug, Clone, Default)]
pub struct CommandStats {
    counts: [(u32, u32); ORDER.len()],
}

impl CommandStats {
    /// Records one command and whether it succeeded.
    pub fn record(&mut self, name: &str, ok: bool) {
        let idx = ORDER
            .iter()
            .position(|n| *n == name)
            .unwrap_or(ORDER.len() - 1);
        let entry = &mut self.counts[idx];
        entry.1 = entry.1.saturating_add(1);
        if ok {
            entry.0 = entry.0.saturating_add(1);
        }
    }

    /// `ehlo=1 mail=1 ... commands=N` (just `commands=0` when nothing was said).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let (mut ok_sum, mut total_sum) = (0u32, 0u32);
        for (name, &(ok, total)) in ORDER.iter().zip(self.counts.iter()) {
            if total == 0 {
                continue;
            }
            ok_sum = ok_sum.saturating_add(ok);
            total_sum = total_sum.saturating_add(total);
            parts.push(format!("{name}={}", fraction(ok, total)));
        }
        parts.push(format!("commands={}", fraction(ok_sum, total_sum)));
        parts.join(" ")
    }
}

fn fraction(ok: u32, total: u32) -> String {
    if ok == total {
        total.to_string()
    } else {
        format!("{ok}/{total}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_ok() {
        let mut s = CommandStats::default();
        for n in ["ehlo", "mail", "rcpt", "data", "quit"] {
            s.record(n, true);
        }
        assert_eq!(s.summary(), "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5");
    }

    #[test]
    fn with_failures_and_unknown() {
        let mut s = CommandStats::default();
        s.record("helo", true);
        s.record("rcpt", false);
        s.record("rcpt", true);
        s.record("bogus", false);
        assert_eq!(s.summary(), "helo=1 rcpt=1/2 unknown=0/1 commands=2/4");
        assert_eq!(CommandStats::default().summary(), "commands=0");
    }
}
