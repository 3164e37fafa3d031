//! One local recipient, fully: aliases, `.forward`, `:include:`, commands, files,
//! mailbox, and forwarding of whatever is not ours, in local(8)'s order:
//!
//! 1. Delivered-To loop check (at every level: a message that already carries
//!    `Delivered-To: ADDRESS` bounces 5.4.6 "mail forwarding loop for ADDRESS").
//! 2. Not a local domain (not empty, not myhostname / mydestination): forwarded, i.e.
//!    queued again as a new message ([`crate::resubmit`]).
//! 3. alias_maps, looked up with the lowercased local part, first with its extension,
//!    then without. The value is a list ([`crate::expansion_list`]); commands and files
//!    in it run with the alias table file's owner's identity, or default_privs when
//!    root owns it. `owner-NAME`, when it exists, becomes the envelope sender of the
//!    copies this alias forwards (so their bounces reach the list owner).
//! 4. The passwd user (without extension); unknown: luser_relay if set, else bounce
//!    5.1.1. Then forward_path (`.forward+ext`, `.forward`), read as the user.
//! 5. mailbox_command if set (run as the user), else the mailbox (home_mailbox,
//!    mail_spool_directory; a Maildir++ folder per extension when
//!    rostfix_maildir_extension_folders = yes).
//!
//! Loops inside one expansion: a name already being expanded higher up (alias `a: a`,
//! a .forward naming its own user) is not expanded again but delivered to the mailbox,
//! as Postfix does; when that name is no user (alias `a: b`, `b: a`) it bounces 5.4.6
//! as a loop, not 5.1.1. An `:include:` file already being expanded higher up (itself,
//! or files including each other; the same file under any spelling of its path)
//! bounces 5.4.6: skipping it silently could leave a recipient "delivered" with
//! nothing stored. An include file already expanded with the same rights elsewhere in
//! the recipient's expansion is skipped (its destinations were served), so a list
//! naming one file many times is cheap. Anything deeper than [`MAX_NESTING`] levels
//! (addresses and include files alike) bounces 5.4.6.
//!
//! Include rights (Postfix's local/include.c): a list with root's rights (a root-owned
//! alias table, root's .forward) reads an include file as root and takes its owner's
//! rights when that owner is not root. Any other list keeps its own rights and reads
//! the file with them: an include never lends its owner's rights to whoever names it.
//! Duplicates: each final destination (mailbox, file, command with its identity,
//! forwarded address) receives the message once per delivery request.
//! allow_mail_to_commands / allow_mail_to_files name the classes (`alias`, `forward`,
//! `include`) whose lists may contain commands and files; a refused one bounces 5.7.1.
//!
//! Every final destination is a [`Leaf`] with its own outcome, logged by the agent as
//! one `to=` line each. The recipient's verdict for qmgr: deferred if any leaf was
//! deferred (a retry then repeats the leaves that succeeded, as in Postfix), else
//! bounced if any bounced, else sent. A leaf records the owner of the alias it came
//! from: a bounce caused by it is reported to `owner-NAME` ([`bounce_owner`]), and
//! forwarded copies carry the owner as their sender.

use crate::attributes::{command_environment, expand, expand_filtered, Attributes};
use crate::command::{run_command, CommandSpec};
use crate::deliver::{deliver_file, deliver_mailbox, Commit, Message, Settings, UserInfo};
use crate::expansion_list::{parse_file, parse_list, Item};
use crate::failure::Failure;
use crate::headers::{delivered_copy, has_delivered_to};
use crate::listfile::{open_include, read_forward};
use crate::mbox;
use crate::privileges::{unprivileged, Identity, PrivGuard};
use crate::recipient::{local_part, parse_recipient, plausible_user_name};
use crate::resubmit::Forwarder;
use nix::unistd::Uid;
use rostfix_maps::Map;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Postfix's default command_expansion_filter and execution_directory_expansion_filter.
pub const POSTFIX_EXPANSION_FILTER: &str =
    "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Deepest nesting of aliases, .forward and :include: files.
pub const MAX_NESTING: usize = 20;

/// One alias table and who owns it.
pub struct AliasTable {
    pub map: Box<dyn Map>,
    /// The owner of the table's file when not root: commands and files of its aliases
    /// run as this identity. None: default_privs.
    pub owner: Option<Identity>,
}

/// The main.cf values of local beyond the mailbox ones ([`Settings`]).
pub struct LocalConf {
    /// myhostname and the plain entries of mydestination, lowercased.
    pub local_domains: Vec<String>,
    pub myorigin: String,
    pub aliases: Vec<AliasTable>,
    /// Tables of alias_maps that could not be opened: every alias lookup defers.
    pub alias_errors: Vec<String>,
    /// allow_mail_to_commands / allow_mail_to_files classes, lowercased.
    pub allow_commands: Vec<String>,
    pub allow_files: Vec<String>,
    /// forward_path entries, unexpanded.
    pub forward_path: Vec<String>,
    pub mailbox_command: String,
    pub command_time_limit: Duration,
    pub command_execution_directory: String,
    /// command_expansion_filter / execution_directory_expansion_filter: the
    /// characters allowed in a command's environment values and in the values
    /// substituted into command_execution_directory (others become `_`).
    pub command_expansion_filter: String,
    pub execution_directory_expansion_filter: String,
    pub local_command_shell: String,
    pub export_environment: Vec<String>,
    pub luser_relay: String,
    /// mailbox_transport_maps (keyed by user name) and mailbox_transport: where a
    /// local user's mail goes instead of the mailbox (Dovecot LMTP).
    pub mailbox_transport_maps: Vec<Box<dyn Map>>,
    pub mailbox_transport: String,
    /// fallback_transport_maps and fallback_transport: where mail for a name that is
    /// no passwd user goes, before luser_relay.
    pub fallback_transport_maps: Vec<Box<dyn Map>>,
    pub fallback_transport: String,
    pub expansion_size_limit: usize,
    /// The default_privs user.
    pub default_privs: Option<UserInfo>,
    /// main.cf values that expansions may name (myhostname, mydomain, myorigin).
    pub params: Vec<(String, String)>,
}

impl LocalConf {
    /// Postfix's defaults with no alias table, for `local_domains` (tests and tools).
    pub fn defaults(local_domains: &[&str]) -> LocalConf {
        LocalConf {
            local_domains: local_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            myorigin: local_domains
                .first()
                .copied()
                .unwrap_or("localhost")
                .to_string(),
            aliases: Vec::new(),
            alias_errors: Vec::new(),
            allow_commands: vec!["alias".into(), "forward".into()],
            allow_files: vec!["alias".into(), "forward".into()],
            forward_path: vec![
                "$home/.forward${recipient_delimiter}${extension}".into(),
                "$home/.forward".into(),
            ],
            mailbox_command: String::new(),
            command_time_limit: Duration::from_secs(1000),
            command_execution_directory: String::new(),
            command_expansion_filter: POSTFIX_EXPANSION_FILTER.into(),
            execution_directory_expansion_filter: POSTFIX_EXPANSION_FILTER.into(),
            local_command_shell: String::new(),
            export_environment: vec!["TZ".into(), "MAIL_CONFIG".into(), "LANG".into()],
            luser_relay: String::new(),
            mailbox_transport_maps: Vec::new(),
            mailbox_transport: String::new(),
            fallback_transport_maps: Vec::new(),
            fallback_transport: String::new(),
            expansion_size_limit: 1000,
            default_privs: None,
            params: Vec::new(),
        }
    }
}

/// One final destination and its outcome (Ok: the status text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The address logged as `to=`.
    pub to: String,
    pub result: Result<String, Failure>,
    /// `owner-NAME@$myorigin` when this destination came from an alias with an owner:
    /// its failure is reported to the owner, not to the sender (Postfix's
    /// bounce_workaround).
    pub owner: Option<String>,
    /// Handed to another agent (mailbox_transport, fallback_transport), which logged
    /// it: the agent loop logs no line of its own for this destination.
    pub passed: bool,
    /// A Maildir copy of a group commit: its index in the request's stage
    /// (crate::group_commit); delivered only once that copy's `new/` is synced.
    pub staged: Option<usize>,
}

/// The identity and user attributes commands and files of a list run with.
#[derive(Debug, Clone)]
struct Privs {
    ident: Identity,
    /// The list has root's rights (a root-owned alias table, for which `ident` is
    /// default_privs, or root's own .forward): only then does an :include: take its
    /// file owner's rights.
    root: bool,
    user: String,
    home: String,
    shell: String,
}

/// Where a list came from.
#[derive(Debug, Clone)]
struct Origin {
    /// "alias", "forward" or "include" (the allow_mail_to_* classes).
    class: &'static str,
    privs: Privs,
    /// `owner-NAME@myorigin` when the alias has an owner.
    owner_sender: Option<String>,
    /// The address whose expansion this list is (RECIPIENT of its commands).
    address: String,
}

/// A local name to deliver to as a user (after aliases), and how it got there.
#[derive(Clone, Copy)]
struct UserTarget<'t> {
    address: &'t str,
    user: &'t str,
    extension: Option<&'t str>,
    /// `\user`: no .forward.
    no_expand: bool,
    /// The name is an alias already being expanded higher up.
    alias_looped: bool,
}

/// Looks a user up by name (the passwd database, or a test double).
pub type UserLookup<'a> = &'a dyn Fn(&str) -> Result<Option<UserInfo>, String>;

/// The expansion of one recipient.
pub struct Expansion<'a> {
    settings: &'a Settings,
    conf: &'a LocalConf,
    users: UserLookup<'a>,
    msg: Message<'a>,
    /// The top-level recipient: the Delivered-To of every copy.
    top: String,
    orig: String,
    seen: HashSet<String>,
    leaves: Vec<Leaf>,
    /// (sender, address, leaf index) waiting to be queued.
    forwards: Vec<(String, String, usize)>,
    ancestors: Vec<String>,
    /// Include files (uid of the rights, device, inode) expanded for this recipient.
    includes_done: HashSet<(u32, u64, u64)>,
    /// Include files (device, inode) already reported as a loop for this recipient.
    include_loops: HashSet<(u64, u64)>,
    /// The owner in effect for the list being expanded (innermost last; a list
    /// without an owner pushes None, so an owner does not leak into a .forward).
    owners: Vec<Option<String>>,
    /// The request, for mailbox_transport and fallback_transport.
    pass_cx: Option<crate::pass::PassContext>,
}

impl<'a> Expansion<'a> {
    pub fn new(
        settings: &'a Settings,
        conf: &'a LocalConf,
        users: UserLookup<'a>,
        msg: Message<'a>,
    ) -> Expansion<'a> {
        Expansion {
            settings,
            conf,
            users,
            msg,
            top: String::new(),
            orig: String::new(),
            seen: HashSet::new(),
            leaves: Vec::new(),
            forwards: Vec::new(),
            ancestors: Vec::new(),
            includes_done: HashSet::new(),
            include_loops: HashSet::new(),
            owners: Vec::new(),
            pass_cx: None,
        }
    }

    /// Delivers one recipient of the request; returns its leaves. The duplicate filter
    /// lives on across the recipients of one request.
    pub fn recipient(
        &mut self,
        address: &str,
        orig_address: &str,
        forwarder: &mut dyn Forwarder,
    ) -> Vec<Leaf> {
        self.top = address.to_string();
        self.orig = orig_address.to_string();
        self.leaves.clear();
        self.forwards.clear();
        self.ancestors.clear();
        self.includes_done.clear();
        self.include_loops.clear();
        self.owners.clear();
        self.deliver(address, 0, None, false);
        self.flush_forwards(forwarder);
        std::mem::take(&mut self.leaves)
    }

    /// As [`Expansion::recipient`], with the recipient's Maildir copies named and made
    /// durable as `commit` says (the agent gives each recipient its stamp).
    pub fn recipient_with(
        &mut self,
        address: &str,
        orig_address: &str,
        commit: Commit<'a>,
        forwarder: &mut dyn Forwarder,
    ) -> Vec<Leaf> {
        self.msg.commit = commit;
        let leaves = self.recipient(address, orig_address, forwarder);
        self.msg.commit = Commit::default();
        leaves
    }

    fn leaf(&mut self, to: &str, result: Result<String, Failure>) {
        self.leaf_staged(to, result, None);
    }

    fn leaf_staged(&mut self, to: &str, result: Result<String, Failure>, staged: Option<usize>) {
        let owner = self.owners.last().cloned().flatten();
        self.leaves.push(Leaf {
            to: to.to_string(),
            result,
            owner,
            passed: false,
            staged,
        });
    }

    /// The transport mailbox_transport_maps or mailbox_transport (or the fallback_
    /// pair) names for `user`; a table that fails defers.
    fn transport_for(
        &self,
        maps: &[Box<dyn Map>],
        fixed: &str,
        user: &str,
    ) -> Result<Option<String>, Failure> {
        for map in maps {
            match map.lookup(user) {
                Ok(Some(found)) => return Ok(Some(found)),
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure::defer(
                        "4.3.0",
                        format!("transport table lookup for \"{user}\" failed: {e}"),
                    ))
                }
            }
        }
        let fixed = fixed.trim();
        Ok((!fixed.is_empty()).then(|| fixed.to_string()))
    }

    /// A bare name from a list gets `@$myorigin`, as Postfix's local has the address
    /// canonicalized before it resolves it: the delivery is then logged as
    /// `to=<alice@example.com>`, not `to=<alice>`.
    fn qualify(&self, address: &str) -> String {
        if address.contains('@') || self.conf.myorigin.is_empty() {
            address.to_string()
        } else {
            format!("{address}@{}", self.conf.myorigin)
        }
    }

    /// Hands `address` to `transport` ([`crate::pass`]) once per request.
    fn pass_to(&mut self, transport: &str, address: &str) {
        let qualified = self.qualify(address);
        if !self.seen.insert(format!("pass:{transport}:{qualified}")) {
            return;
        }
        let result = match &self.pass_cx {
            Some(cx) => crate::pass::pass(cx, transport, &qualified, &self.orig),
            None => Err(Failure::defer(
                "4.3.5",
                format!("mail transport unavailable: {transport}"),
            )),
        };
        let owner = self.owners.last().cloned().flatten();
        self.leaves.push(Leaf {
            to: qualified,
            result,
            owner,
            passed: self.pass_cx.is_some(),
            staged: None,
        });
    }

    /// Where this request's passed recipients are sent from (the agent sets it).
    pub fn set_pass_context(&mut self, cx: crate::pass::PassContext) {
        self.pass_cx = Some(cx);
    }

    fn is_local(&self, address: &str) -> bool {
        match address.rfind('@') {
            None => true,
            Some(at) => {
                let domain = address[at + 1..].trim_end_matches('.').to_ascii_lowercase();
                domain.is_empty() || self.conf.local_domains.contains(&domain)
            }
        }
    }

    fn deliver(&mut self, address: &str, level: usize, origin: Option<&Origin>, no_expand: bool) {
        if level > MAX_NESTING {
            let text = format!("mail forwarding loop for {address} (too many nested aliases)");
            return self.leaf(address, Err(Failure::bounce("5.4.6", text)));
        }
        if has_delivered_to(self.msg.content, address) {
            let text = format!("mail forwarding loop for {address}");
            return self.leaf(address, Err(Failure::bounce("5.4.6", text)));
        }
        if !self.is_local(address) {
            return self.forward(address, origin);
        }
        let rcpt = parse_recipient(address, &self.settings.recipient_delimiter);
        let mut alias_looped = false;
        if !no_expand {
            match self.alias_lookup(address) {
                Err(f) => return self.leaf(address, Err(f)),
                Ok(Some((key, value, owner))) => {
                    if !self.ancestors.contains(&format!("alias:{key}")) {
                        return self.expand_alias(address, &key, &value, owner, level);
                    }
                    alias_looped = true;
                }
                Ok(None) => {}
            }
        }
        let user = UserTarget {
            address,
            user: &rcpt.user,
            extension: rcpt.extension.as_deref(),
            no_expand,
            alias_looped,
        };
        self.deliver_user(&user, level);
    }

    /// The first alias for the local part (with extension, then without).
    fn alias_lookup(
        &self,
        address: &str,
    ) -> Result<Option<(String, String, Option<Identity>)>, Failure> {
        if self.conf.aliases.is_empty() && self.conf.alias_errors.is_empty() {
            return Ok(None);
        }
        if let Some(e) = self.conf.alias_errors.first() {
            return Err(Failure::defer(
                "4.3.0",
                format!("alias database unavailable: {e}"),
            ));
        }
        // The key is the internal (unquoted) form: "quoted name"@host -> quoted name.
        let local = unquote_local(local_part(address)).to_lowercase();
        let rcpt = parse_recipient(address, &self.settings.recipient_delimiter);
        let mut keys = vec![local.clone()];
        if rcpt.user != local {
            keys.push(rcpt.user);
        }
        for key in keys {
            for table in &self.conf.aliases {
                match table.map.lookup(&key) {
                    Ok(Some(v)) => return Ok(Some((key, v, table.owner))),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(Failure::defer(
                            "4.3.0",
                            format!("alias database {} unavailable: {e}", table.map.spec()),
                        ))
                    }
                }
            }
        }
        Ok(None)
    }

    fn privs_for(&self, owner: Option<Identity>) -> Result<Privs, Failure> {
        if let Some(id) = owner {
            let pw = nix::unistd::User::from_uid(id.uid).ok().flatten();
            return Ok(Privs {
                ident: id,
                root: id.uid.is_root(),
                user: pw.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
                home: pw
                    .as_ref()
                    .map(|u| u.dir.display().to_string())
                    .unwrap_or_default(),
                shell: pw
                    .map(|u| u.shell.display().to_string())
                    .unwrap_or_default(),
            });
        }
        let Some(u) = &self.conf.default_privs else {
            return Err(Failure::defer(
                "4.3.0",
                "default_privs: unknown user; cannot run commands or write files for aliases",
            ));
        };
        Ok(Privs {
            ident: Identity {
                uid: u.uid,
                gid: u.gid,
            },
            root: true,
            user: u.name.clone(),
            home: u.home.display().to_string(),
            shell: shell_of(&u.name),
        })
    }

    fn expand_alias(
        &mut self,
        address: &str,
        key: &str,
        value: &str,
        owner: Option<Identity>,
        level: usize,
    ) {
        let owner_sender = if key.starts_with("owner-") {
            None
        } else {
            match self.alias_lookup(&format!("owner-{key}")) {
                Ok(Some(_)) => Some(format!("owner-{key}@{}", self.conf.myorigin)),
                _ => None,
            }
        };
        let privs = match self.privs_for(owner) {
            Ok(p) => p,
            Err(f) => return self.leaf(address, Err(f)),
        };
        let origin = Origin {
            class: "alias",
            privs,
            owner_sender,
            address: address.to_string(),
        };
        let items = parse_list(value);
        self.expand_items(address, items, &origin, format!("alias:{key}"), level);
    }

    fn expand_items(
        &mut self,
        address: &str,
        items: Vec<Item>,
        origin: &Origin,
        marker: String,
        level: usize,
    ) {
        if items.len() > self.conf.expansion_size_limit.max(1) {
            let text = format!(
                "unreasonable expansion size: {} destinations, expansion_size_limit is {}",
                items.len(),
                self.conf.expansion_size_limit
            );
            return self.leaf(address, Err(Failure::bounce("5.3.0", text)));
        }
        self.ancestors.push(marker);
        self.owners.push(origin.owner_sender.clone());
        for item in items {
            self.item(item, level + 1, origin);
        }
        self.owners.pop();
        self.ancestors.pop();
    }

    fn deliver_user(&mut self, target: &UserTarget<'_>, level: usize) {
        let UserTarget {
            address,
            user,
            extension,
            no_expand,
            alias_looped,
        } = *target;
        let unknown = || Failure::bounce("5.1.1", format!("unknown user: \"{user}\""));
        let found = if plausible_user_name(user) {
            (self.users)(user)
        } else {
            Ok(None)
        };
        let info = match found {
            Ok(Some(u)) => u,
            // An alias met again inside its own expansion falls through to the user of
            // that name; when there is none the aliases loop, and saying "unknown user"
            // would hide the real fault.
            Ok(None) if alias_looped => {
                let text = format!("mail forwarding loop for {address} (alias loop)");
                return self.leaf(address, Err(Failure::bounce("5.4.6", text)));
            }
            Ok(None) => {
                match self.transport_for(
                    &self.conf.fallback_transport_maps,
                    &self.conf.fallback_transport,
                    user,
                ) {
                    Err(f) => return self.leaf(address, Err(f)),
                    Ok(Some(transport)) => return self.pass_to(&transport, address),
                    Ok(None) => {}
                }
                return self.luser_relay(address, user, extension, level, unknown());
            }
            Err(e) => {
                let text = format!("user lookup for \"{user}\" failed: {e}");
                return self.leaf(address, Err(Failure::defer("4.3.0", text)));
            }
        };
        let attrs = self.attributes(address, &info, extension);
        let ident = Identity {
            uid: info.uid,
            gid: info.gid,
        };
        let forward_marker = format!("forward:{}", info.name);
        if !no_expand && !self.ancestors.contains(&forward_marker) {
            match self.read_forward_file(&attrs, ident) {
                Err(f) => return self.leaf(address, Err(f)),
                Ok(Some(text)) => {
                    let origin = Origin {
                        class: "forward",
                        privs: Privs {
                            ident,
                            root: ident.uid.is_root(),
                            user: attrs.user.clone(),
                            home: attrs.home.clone(),
                            shell: attrs.shell.clone(),
                        },
                        owner_sender: None,
                        address: address.to_string(),
                    };
                    return self.expand_items(
                        address,
                        parse_file(&text),
                        &origin,
                        forward_marker,
                        level,
                    );
                }
                Ok(None) => {}
            }
        }
        match self.transport_for(
            &self.conf.mailbox_transport_maps,
            &self.conf.mailbox_transport,
            &info.name,
        ) {
            Err(f) => return self.leaf(address, Err(f)),
            Ok(Some(transport)) => return self.pass_to(&transport, address),
            Ok(None) => {}
        }
        if !self.conf.mailbox_command.trim().is_empty() {
            let cmd = self.conf.mailbox_command.clone();
            if !self.seen.insert(format!("command:{}:{cmd}", info.uid)) {
                return;
            }
            let result = self
                .run(&cmd, ident, &attrs)
                .map(|()| format!("delivered to command: {cmd}"));
            return self.leaf(address, result);
        }
        let folder = if self.settings.extension_folders {
            extension.unwrap_or("")
        } else {
            ""
        };
        if !self
            .seen
            .insert(format!("mailbox:{}:{}:{folder}", info.uid, info.name))
        {
            return;
        }
        let msg = Message {
            original: &self.orig,
            ..self.msg
        };
        // A Maildir copy staged for the group commit is the stage's newest entry.
        let staged_before = self.msg.commit.stage.map(|st| st.borrow().len());
        let result =
            deliver_mailbox(self.settings, msg, &self.top, &info, extension).map(str::to_string);
        let staged = match (self.msg.commit.stage, staged_before) {
            (Some(st), Some(before)) if result.is_ok() && st.borrow().len() > before => {
                Some(st.borrow().len() - 1)
            }
            _ => None,
        };
        self.leaf_staged(address, result, staged);
    }

    fn luser_relay(
        &mut self,
        address: &str,
        user: &str,
        extension: Option<&str>,
        level: usize,
        unknown: Failure,
    ) {
        let relay = self.conf.luser_relay.trim();
        if relay.is_empty() || self.ancestors.iter().any(|a| a == "luser_relay") {
            return self.leaf(address, Err(unknown));
        }
        let info = UserInfo {
            name: user.to_string(),
            uid: nix::unistd::Uid::from_raw(0),
            gid: nix::unistd::Gid::from_raw(0),
            home: PathBuf::new(),
        };
        let attrs = self.attributes(address, &info, extension);
        let Some(target) = expand(relay, &attrs, &|n| self.param(n)) else {
            return self.leaf(address, Err(unknown));
        };
        self.ancestors.push("luser_relay".into());
        self.deliver(&target, level + 1, None, false);
        self.ancestors.pop();
    }

    fn param(&self, name: &str) -> Option<String> {
        self.conf
            .params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn attributes(&self, address: &str, user: &UserInfo, extension: Option<&str>) -> Attributes {
        let local = local_part(address).to_string();
        let domain = address
            .rfind('@')
            .map(|at| address[at + 1..].to_string())
            .unwrap_or_default();
        Attributes {
            user: user.name.clone(),
            home: user.home.display().to_string(),
            shell: shell_of(&user.name),
            recipient: address.to_string(),
            local,
            domain,
            extension: extension.map(str::to_string),
            recipient_delimiter: self.settings.recipient_delimiter.clone(),
            sender: self.msg.sender.to_string(),
            original_recipient: self.orig.clone(),
        }
    }

    /// The first forward_path file that exists and passes the checks, as its text.
    fn read_forward_file(
        &self,
        attrs: &Attributes,
        ident: Identity,
    ) -> Result<Option<String>, Failure> {
        for entry in &self.conf.forward_path {
            let Some(path) = expand(entry, attrs, &|n| self.param(n)) else {
                continue;
            };
            if path.is_empty() {
                continue;
            }
            let found = {
                let _guard =
                    PrivGuard::switch(ident).map_err(|e| Failure::defer("4.3.0", e.to_string()))?;
                read_forward(Path::new(&path), ident.uid)?
            };
            if let Some(f) = found {
                return Ok(Some(f.text));
            }
        }
        Ok(None)
    }

    fn item(&mut self, item: Item, level: usize, origin: &Origin) {
        let cur = origin.address.clone();
        match item {
            Item::Address(a) => {
                let a = self.qualify(&a);
                self.deliver(&a, level, Some(origin), false)
            }
            Item::NoExpand(u) => {
                // `\user` names a local user whatever domain it carries: qualified
                // only with a domain that keeps it local.
                let bare = local_part(&u);
                let u = match self.qualify(bare) {
                    q if self.is_local(&q) => q,
                    _ => bare.to_string(),
                };
                self.deliver(&u, level, Some(origin), true)
            }
            Item::File(path) => {
                if !self.conf.allow_files.iter().any(|c| c == origin.class) {
                    let text = format!("mail to file is restricted ({} {path})", origin.class);
                    return self.leaf(&cur, Err(Failure::bounce("5.7.1", text)));
                }
                if !self.seen.insert(format!("file:{path}")) {
                    return;
                }
                let result = self
                    .unprivileged(origin.privs.ident)
                    .and_then(|ident| {
                        let msg = Message {
                            original: &self.orig,
                            ..self.msg
                        };
                        deliver_file(self.settings, msg, &self.top, Path::new(&path), ident)
                    })
                    .map(|()| format!("delivered to file: {path}"));
                self.leaf(&cur, result);
            }
            Item::Command(cmd) => {
                if !self.conf.allow_commands.iter().any(|c| c == origin.class) {
                    let text = format!("mail to command is restricted ({} |{cmd})", origin.class);
                    return self.leaf(&cur, Err(Failure::bounce("5.7.1", text)));
                }
                if !self
                    .seen
                    .insert(format!("command:{}:{cmd}", origin.privs.ident.uid))
                {
                    return;
                }
                let user = UserInfo {
                    name: origin.privs.user.clone(),
                    uid: origin.privs.ident.uid,
                    gid: origin.privs.ident.gid,
                    home: PathBuf::from(&origin.privs.home),
                };
                let rcpt = parse_recipient(&cur, &self.settings.recipient_delimiter);
                let mut attrs = self.attributes(&cur, &user, rcpt.extension.as_deref());
                attrs.shell = origin.privs.shell.clone();
                let result = self
                    .run(&cmd, origin.privs.ident, &attrs)
                    .map(|()| format!("delivered to command: {cmd}"));
                self.leaf(&cur, result);
            }
            Item::Include(path) => self.include(&path, level, origin),
        }
    }

    /// Expands an `:include:` file named in a list from `origin`, at nesting `level`.
    fn include(&mut self, path: &str, level: usize, origin: &Origin) {
        let cur = origin.address.clone();
        if level > MAX_NESTING {
            let text = format!(
                "mail forwarding loop for {cur} (:include: nesting limit of {MAX_NESTING} exceeded)"
            );
            log::warn!(":include: nesting limit exceeded for {path}");
            return self.leaf(&cur, Err(Failure::bounce("5.4.6", text)));
        }
        // A list with root's rights reads the file as root (it then takes the owner's
        // rights below); any other list reads it with its own rights, so the kernel
        // refuses what that user could not read.
        let opened = if origin.privs.root {
            open_include(Path::new(path))
        } else {
            match PrivGuard::switch(origin.privs.ident) {
                Ok(_guard) => open_include(Path::new(path)),
                Err(e) => Err(Failure::defer("4.3.0", e.to_string())),
            }
        };
        let file = match opened {
            Ok(f) => f,
            Err(f) => return self.leaf(&cur, Err(f)),
        };
        let (dev, ino) = (file.dev, file.ino);
        let marker = format!("include:{dev}:{ino}");
        if self.ancestors.contains(&marker) {
            // One notice per looping file, however many spellings of it the lists hold.
            if self.include_loops.insert((dev, ino)) {
                let text =
                    format!("mail forwarding loop for {cur} (:include:{path} includes itself)");
                self.leaf(&cur, Err(Failure::bounce("5.4.6", text)));
            }
            return;
        }
        let privs = match include_rights(origin.privs.root, file.uid) {
            IncludeRights::FileOwner => match self.privs_for(Some(Identity {
                uid: file.uid,
                gid: file.gid,
            })) {
                Ok(p) => p,
                Err(f) => return self.leaf(&cur, Err(f)),
            },
            IncludeRights::Inherit => origin.privs.clone(),
        };
        if !self
            .includes_done
            .insert((privs.ident.uid.as_raw(), dev, ino))
        {
            return;
        }
        let list = match file.read(Path::new(path)) {
            Ok(l) => l,
            Err(f) => return self.leaf(&cur, Err(f)),
        };
        let inner = Origin {
            class: "include",
            privs,
            owner_sender: origin.owner_sender.clone(),
            address: cur.clone(),
        };
        self.expand_items(&cur, parse_file(&list.text), &inner, marker, level);
    }

    /// Commands and files never run as root: uid/gid 0 become default_privs'.
    fn unprivileged(&self, ident: Identity) -> Result<Identity, Failure> {
        let default = self.conf.default_privs.as_ref().map(|u| Identity {
            uid: u.uid,
            gid: u.gid,
        });
        unprivileged(ident, default).map_err(|e| {
            log::warn!("{e}");
            Failure::defer("4.3.0", e.to_string())
        })
    }

    fn run(&self, cmd: &str, ident: Identity, attrs: &Attributes) -> Result<(), Failure> {
        let ident = self.unprivileged(ident)?;
        let cwd = if self.conf.command_execution_directory.trim().is_empty() {
            None
        } else {
            match expand_filtered(
                &self.conf.command_execution_directory,
                attrs,
                &|n| self.param(n),
                Some(&self.conf.execution_directory_expansion_filter),
            ) {
                Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
                _ => None,
            }
        };
        // Postfix gives a command the From_ line, Return-Path and Delivered-To, no
        // quoting (procmail and friends expect exactly this).
        let copy = delivered_copy(self.msg.sender, &self.orig, &self.top, self.msg.content);
        let envelope = if self.msg.sender.is_empty() {
            "MAILER-DAEMON"
        } else {
            self.msg.sender
        };
        let mut input = format!("From {envelope} {}\n", mbox::asctime(self.msg.now)).into_bytes();
        input.extend_from_slice(&copy);
        run_command(&CommandSpec {
            command: cmd,
            shell: &self.conf.local_command_shell,
            ident,
            env: command_environment(
                attrs,
                &self.conf.export_environment,
                &self.conf.command_expansion_filter,
            ),
            cwd,
            input: &input,
            time_limit: self.conf.command_time_limit,
            file_size_limit: self.settings.mailbox_size_limit,
        })
    }

    fn forward(&mut self, address: &str, origin: Option<&Origin>) {
        if !self
            .seen
            .insert(format!("forward:{}", address.to_lowercase()))
        {
            return;
        }
        let sender = origin
            .and_then(|o| o.owner_sender.clone())
            .unwrap_or_else(|| self.msg.sender.to_string());
        let idx = self.leaves.len();
        self.leaf(address, Ok(String::new()));
        self.forwards.push((sender, address.to_string(), idx));
    }

    /// Queues the forwarded addresses: one new message per envelope sender.
    fn flush_forwards(&mut self, forwarder: &mut dyn Forwarder) {
        let pending = std::mem::take(&mut self.forwards);
        let mut senders: Vec<&str> = Vec::new();
        for (s, _, _) in &pending {
            if !senders.contains(&s.as_str()) {
                senders.push(s);
            }
        }
        for sender in senders {
            let group: Vec<&(String, String, usize)> =
                pending.iter().filter(|(s, _, _)| s == sender).collect();
            let addrs: Vec<String> = group.iter().map(|(_, a, _)| a.clone()).collect();
            let result = forwarder
                .forward(sender, &addrs, &self.orig, &self.top, self.msg.content)
                .map(|id| format!("forwarded as {id}"));
            for (_, _, idx) in group {
                self.leaves[*idx].result = result.clone();
            }
        }
    }
}

/// Whose rights the commands and files of an :include: file run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeRights {
    /// The including list's rights.
    Inherit,
    /// The include file owner's rights.
    FileOwner,
}

/// Postfix's rule (local/include.c): only a list with root's rights gives way to the
/// include file owner (so an ordinary user's file named in /etc/aliases does not run
/// as default_privs, which would hand that account to the user); a list with a user's
/// rights keeps them, or naming a victim's file would borrow the victim's rights.
pub(crate) fn include_rights(list_has_root_rights: bool, file_owner: Uid) -> IncludeRights {
    if list_has_root_rights && !file_owner.is_root() {
        IncludeRights::FileOwner
    } else {
        IncludeRights::Inherit
    }
}

/// A local part without its RFC 5321 quoting (`"a b"` -> `a b`, `\"` -> `"`).
pub fn unquote_local(local: &str) -> String {
    match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => local.to_string(),
    }
}

/// The login shell of `name` (for SHELL), empty when unknown.
fn shell_of(name: &str) -> String {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.shell.display().to_string())
        .unwrap_or_default()
}

/// The recipient's verdict from its leaves: deferred if any deferred, else bounced if
/// any bounced, else sent. The Failure carries the text of the deciding leaf (for sent:
/// the first leaf's status text, dsn 2.0.0).
/// Who gets the non-delivery notice when [`verdict`] bounces the recipient: the owner
/// of the alias the failed destination came from, if it has one (None: the sender).
pub fn bounce_owner(leaves: &[Leaf]) -> Option<String> {
    leaves
        .iter()
        .find(|l| l.result.is_err())
        .and_then(|l| l.owner.clone())
}

pub fn verdict(leaves: &[Leaf]) -> Result<String, Failure> {
    if let Some(f) = leaves
        .iter()
        .filter_map(|l| l.result.as_ref().err())
        .find(|f| !f.permanent)
    {
        return Err(f.clone());
    }
    if let Some(f) = leaves.iter().filter_map(|l| l.result.as_ref().err()).next() {
        return Err(f.clone());
    }
    Ok(leaves
        .iter()
        .find_map(|l| l.result.as_ref().ok().cloned())
        .unwrap_or_else(|| "delivered".to_string()))
}
