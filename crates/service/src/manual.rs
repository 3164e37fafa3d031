//! The manual page every daemon prints for `--help`: one shape (NAME, SYNOPSIS,
//! DESCRIPTION, OPTIONS, EXIT STATUS, SEE ALSO, bodies indented four spaces), the
//! options master passes written once ([`DAEMON_OPTIONS`]), and [`missing_sections`],
//! which each daemon's unit test runs on its page. Each daemon keeps its own
//! DESCRIPTION beside its code.

use std::fmt;

/// The section headings, in the order a page prints them.
pub const SECTIONS: [&str; 6] = [
    "NAME",
    "SYNOPSIS",
    "DESCRIPTION",
    "OPTIONS",
    "EXIT STATUS",
    "SEE ALSO",
];

/// The options master passes to every daemon (crates/service/src/args.rs parses them).
pub const DAEMON_OPTIONS: &str = "\
Set by master(8), never typed by hand: -n NAME (service), -t TYPE, -c (chroot
into queue_directory), -u (run as mail_owner), -l, -z, -v, -o name=value
(main.cf override for this service only). --help prints this text.";

/// The exit status of a daemon that serves until master goes away or it retires.
pub const RETIRING_EXIT_STATUS: &str = "\
0 when it retires normally (master gone, max_use, max_idle), 1 on a fatal
startup error.";

/// A daemon's manual page; printing it (Display) lays the parts out. The texts are
/// written without indentation; lines may be indented further relative to each other.
#[derive(Debug, Clone, Copy)]
pub struct Manual {
    /// `qmgr - the Rostfix queue manager`.
    pub name: &'static str,
    pub synopsis: &'static str,
    pub description: &'static str,
    /// Printed after [`DAEMON_OPTIONS`] in OPTIONS (empty: nothing more).
    pub more_options: &'static str,
    /// Usually [`RETIRING_EXIT_STATUS`].
    pub exit_status: &'static str,
    pub see_also: &'static str,
}

impl fmt::Display for Manual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = if self.more_options.is_empty() {
            DAEMON_OPTIONS.to_string()
        } else {
            format!("{DAEMON_OPTIONS}\n\n{}", self.more_options)
        };
        let bodies = [
            self.name,
            self.synopsis,
            self.description,
            &options,
            self.exit_status,
            self.see_also,
        ];
        for (i, (heading, body)) in SECTIONS.iter().zip(bodies).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{heading}")?;
            for line in body.trim_end().lines() {
                if line.is_empty() {
                    writeln!(f)?;
                } else {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        Ok(())
    }
}

/// The headings of [`SECTIONS`] that `page` lacks (each must stand alone on a line)
/// or that have no text under them; empty for a complete page.
pub fn missing_sections(page: &str) -> Vec<&'static str> {
    let lines: Vec<&str> = page.lines().collect();
    SECTIONS
        .iter()
        .copied()
        .filter(|heading| {
            let Some(at) = lines.iter().position(|l| l == heading) else {
                return true;
            };
            !lines
                .get(at + 1)
                .is_some_and(|next| next.starts_with(' ') && !next.trim().is_empty())
        })
        .collect()
}

/// The unit test every daemon runs on its page: panics, naming what is missing, when
/// `page` lacks a section. Only for tests (a panic is a test failure there).
pub fn assert_complete(page: &impl fmt::Display) {
    let text = page.to_string();
    let missing = missing_sections(&text);
    assert!(missing.is_empty(), "manual page lacks {missing:?}:\n{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: Manual = Manual {
        name: "demo - a daemon",
        synopsis: "demo -n demo -t unix",
        description: "First paragraph.\n  indented more\n\nSecond paragraph.",
        more_options: "",
        exit_status: RETIRING_EXIT_STATUS,
        see_also: "master(8)",
    };

    #[test]
    fn layout() {
        let page = PAGE.to_string();
        assert!(page.starts_with(
            "NAME\n    demo - a daemon\n\nSYNOPSIS\n    demo -n demo -t unix\n\nDESCRIPTION\n    First paragraph.\n      indented more\n\n    Second paragraph.\n\nOPTIONS\n    Set by master(8), never typed by hand:"
        ), "{page}");
        assert!(page.ends_with(
            "EXIT STATUS\n    0 when it retires normally (master gone, max_use, max_idle), 1 on a fatal\n    startup error.\n\nSEE ALSO\n    master(8)\n"
        ), "{page}");
        assert_complete(&PAGE);
    }

    #[test]
    fn more_options_follow_the_common_ones() {
        let page = Manual {
            more_options: "Parameters used: myhostname.",
            ..PAGE
        }
        .to_string();
        assert!(
            page.contains(
                "--help prints this text.\n\n    Parameters used: myhostname.\n\nEXIT STATUS\n"
            ),
            "{page}"
        );
    }

    #[test]
    fn missing_or_empty_sections_are_named() {
        let page = PAGE.to_string().replace("SEE ALSO", "ALSO");
        assert_eq!(missing_sections(&page), ["SEE ALSO"]);
        let page = Manual {
            synopsis: "",
            ..PAGE
        }
        .to_string();
        assert_eq!(missing_sections(&page), ["SYNOPSIS"]);
    }
}
