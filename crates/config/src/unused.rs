//! postconf's "unused parameter" warnings judged against both files: a main.cf name
//! that no code knows is still in use when a master.cf `-o` value refers to it
//! (`-o smtpd_client_restrictions=$mua_client_restrictions`, the Debian/Ubuntu guides'
//! pattern), when another setting refers to it, or when smtpd_restriction_classes
//! lists it; a master.cf `-o name=value` with an unknown, unreferenced name is
//! reported against master.cf. The text is postconf's: `FILE: unused parameter:
//! NAME=VALUE`. master logs these at start and reload, `rostfix check` and `rostconf`
//! print them; the daemons do not (nor do Postfix's).

use crate::expand::referenced_names;
use crate::main_cf::MainCf;
use crate::master_cf::MasterCf;
use crate::params::lookup_param;
use std::collections::HashSet;

/// Every unused-parameter warning, main.cf's then master.cf's.
pub fn warnings(main: &MainCf, master: Option<&MasterCf>) -> Vec<String> {
    let overrides: Vec<(String, String, String)> = master
        .map(|m| {
            m.services
                .iter()
                .flat_map(|s| {
                    let file = s.file.display().to_string();
                    s.overrides()
                        .into_iter()
                        .map(move |(n, v)| (file.clone(), n, v))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut used: HashSet<String> = overrides
        .iter()
        .flat_map(|(_, _, v)| referenced_names(v))
        .collect();
    used.extend(main.get_list("smtpd_restriction_classes"));
    let mut out: Vec<String> = main
        .warnings()
        .iter()
        .filter(|w| {
            let name = w
                .split_once("unused parameter: ")
                .and_then(|(_, rest)| rest.split_once('='))
                .map(|(n, _)| n);
            name.is_none_or(|n| !used.contains(n))
        })
        .cloned()
        .collect();
    for setting in main.explicit() {
        used.extend(referenced_names(&setting.raw));
    }
    let main_names: HashSet<String> = main.explicit().into_iter().map(|s| s.name).collect();
    for (file, name, value) in &overrides {
        if lookup_param(name).is_none()
            && crate::per_transport::split(name).is_none()
            && !used.contains(name)
            && !main_names.contains(name)
        {
            out.push(format!("{file}: unused parameter: {name}={value}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn master_cf_references_make_a_name_used() {
        let main = MainCf::parse(
            "mua_client_restrictions = permit_sasl_authenticated, reject\n\
             really_unused = 1\n\
             smtpd_restriction_classes = strict\n\
             strict = reject\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap();
        let master = MasterCf::parse(
            "submission inet n - y - - smtpd\n  -o smtpd_client_restrictions=$mua_client_restrictions\n  -o typo_param=yes\n",
            Path::new("/etc/rostfix/master.cf"),
            100,
        )
        .unwrap();
        assert_eq!(
            warnings(&main, Some(&master)),
            vec![
                "/etc/rostfix/main.cf: unused parameter: really_unused=1".to_string(),
                "/etc/rostfix/master.cf: unused parameter: typo_param=yes".to_string(),
            ]
        );
        // Without master.cf the guide's name looks unused: that is why the daemons
        // (which do not read master.cf) do not log these.
        assert_eq!(warnings(&main, None).len(), 2);
    }
}
