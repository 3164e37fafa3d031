//! rostmap / rostalias: build FILE.rdb indexes for hash:/btree: tables and query,
//! list or edit any lookup table, as postmap(1) and postalias(1) do. Run as
//! `rostalias` (or with -a) it reads aliases(5) syntax and defaults to alias_database.

#![forbid(unsafe_code)]

mod args;
mod edit;

use rostfix_config::{config_dir, MainCf};
use rostfix_maps::hash::SourceSyntax;
use rostfix_maps::{open_map, split_spec, MapError};
use std::io::{BufRead, Write};
use std::process::exit;

/// sysexits.h EX_USAGE.
const EX_USAGE: i32 = 64;
/// Exit status for errors (see --help: postmap would use 1).
const EX_ERROR: i32 = 2;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let prog = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rostmap".into());
    // postalias is the rostfix-postfix-compat package's link, named as Postfix names it.
    let alias_name = matches!(prog.as_str(), "rostalias" | "postalias");
    let args = match args::parse(argv.get(1..).unwrap_or_default(), alias_name) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{prog}: {e}\n{}", args::usage(&prog));
            exit(EX_USAGE);
        }
    };
    if args.help {
        print!("{}", args::help(&prog));
        exit(0);
    }
    match run(&prog, args) {
        Ok(code) => exit(code),
        Err(e) => {
            eprintln!("{prog}: fatal: {e}");
            exit(EX_ERROR);
        }
    }
}

/// Read main.cf for defaults; a missing main.cf means built-in defaults.
fn load_config(args: &args::Args) -> Result<MainCf, String> {
    let dir = config_dir(args.config_dir.as_deref());
    if !dir.join("main.cf").exists() {
        return Ok(MainCf::defaults(&dir));
    }
    MainCf::load(&dir).map_err(|e| e.to_string())
}

/// Resolve the table list: bare file names get default_database_type; rostalias
/// with no table uses alias_database.
fn tables(args: &args::Args, prog: &str) -> Result<Vec<String>, String> {
    let config = load_config(args)?;
    // proxy: tables are answered by the running proxymap, as postmap -q does.
    rostfix_maps::proxy::set_socket(
        std::path::Path::new(&config.get("queue_directory")).join(rostfix_maps::proxy::SOCKET),
    );
    let mut names = args.tables.clone();
    if names.is_empty() {
        if !args.aliases {
            return Err(format!("no table given\n{}", args::usage(prog)));
        }
        names = config
            .get("alias_database")
            .split([',', ' ', '\t', '\n'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    let default_type = match config.get("default_database_type") {
        t if t.is_empty() => "hash".to_string(),
        t => t,
    };
    Ok(names
        .into_iter()
        .map(|n| {
            // "/etc/aliases" has no type; "hash:/etc/aliases" does. A path can hold
            // a colon only after a slash, so a type is text before a colon with no '/'.
            match n.split_once(':') {
                Some((t, _)) if !t.contains('/') && !t.is_empty() => n,
                _ => format!("{default_type}:{n}"),
            }
        })
        .collect())
}

fn run(prog: &str, args: args::Args) -> Result<i32, String> {
    let syntax = if args.aliases {
        SourceSyntax::Aliases
    } else {
        SourceSyntax::Postmap
    };
    let tables = tables(&args, prog)?;
    if let Some(key) = &args.query {
        return query(&tables, key, args.aliases);
    }
    if args.show {
        return show(&tables, args.aliases);
    }
    let mut deleted = 0;
    for spec in &tables {
        let (kind, name) = split_spec(spec).map_err(|e| e.to_string())?;
        let path = std::path::Path::new(name);
        let file_backed = matches!(
            kind,
            "hash" | "btree" | "texthash" | "regexp" | "pcre" | "cidr"
        );
        let indexed = edit::is_indexed(kind);
        if kind == "proxy" && (!args.delete.is_empty() || args.incremental) {
            // A Rostfix addition: postmap cannot write through proxymap, but the
            // tables of proxy_write_maps are written by the proxywrite service (which
            // owns them), so -d and -i ask it.
            deleted += proxy_write(spec, &args, syntax)?;
        } else if !args.delete.is_empty() {
            if !file_backed {
                return Err(format!("{spec}: -d needs a file-backed table"));
            }
            deleted +=
                edit::delete(path, &args.delete, syntax, indexed).map_err(|e| e.to_string())?;
        } else if args.incremental {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut input)
                .map_err(|e| format!("read standard input: {e}"))?;
            edit::append(path, &input, syntax, indexed).map_err(|e| e.to_string())?;
        } else if indexed {
            edit::build(path, syntax).map_err(|e| e.to_string())?;
        } else {
            // Nothing to build, as with postmap; opening checks the syntax.
            open_map(spec).map_err(|e| e.to_string())?;
        }
    }
    if !args.delete.is_empty() && deleted == 0 {
        return Ok(1);
    }
    Ok(0)
}

/// `-d KEY...` or `-i` on a `proxy:` table: deletes or updates through proxywrite.
/// Returns how many keys were deleted.
fn proxy_write(spec: &str, args: &args::Args, syntax: SourceSyntax) -> Result<usize, String> {
    let map = rostfix_maps::open_map_for_write(spec, rostfix_maps::OpenFlags::default())
        .map_err(|e| e.to_string())?;
    let mut deleted = 0;
    for key in &args.delete {
        if map.delete(key).map_err(|e| e.to_string())? {
            deleted += 1;
        }
    }
    if args.incremental {
        let mut input = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut input)
            .map_err(|e| format!("read standard input: {e}"))?;
        let entries = match syntax {
            SourceSyntax::Postmap => rostfix_maps::source::parse_postmap(&input, true),
            SourceSyntax::Aliases => rostfix_maps::source::parse_aliases(&input, true),
        };
        for e in entries {
            map.update(&e.key, &e.value).map_err(|e| e.to_string())?;
        }
    }
    Ok(deleted)
}

fn open_all(tables: &[String]) -> Result<Vec<Box<dyn rostfix_maps::Map>>, String> {
    tables
        .iter()
        .map(|t| open_map(t).map_err(|e| e.to_string()))
        .collect()
}

/// First value for `key` across the tables; a lookup error stops the search.
fn find(maps: &[Box<dyn rostfix_maps::Map>], key: &str) -> Result<Option<String>, MapError> {
    for m in maps {
        if let Some(v) = m.lookup(key)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// `-q KEY` prints the value; `-q -` prints `key<TAB>value` per key found, or
/// `key:<TAB>value` for aliases, as postmap and postalias do.
fn query(tables: &[String], key: &str, aliases: bool) -> Result<i32, String> {
    let maps = open_all(tables)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut found_any = false;
    if key == "-" {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| format!("read standard input: {e}"))?;
            let k = line.trim();
            if k.is_empty() {
                continue;
            }
            if let Some(v) = find(&maps, k).map_err(|e| e.to_string())? {
                found_any = true;
                let colon = if aliases { ":" } else { "" };
                let _ = writeln!(out, "{k}{colon}\t{v}");
            }
        }
    } else if let Some(v) = find(&maps, key).map_err(|e| e.to_string())? {
        found_any = true;
        let _ = writeln!(out, "{v}");
    }
    Ok(if found_any { 0 } else { 1 })
}

fn show(tables: &[String], aliases: bool) -> Result<i32, String> {
    let maps = open_all(tables)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for m in &maps {
        let entries = m
            .entries()
            .ok_or_else(|| format!("{}: table cannot be listed", m.spec()))?
            .map_err(|e| e.to_string())?;
        for (k, v) in entries {
            let _ = if aliases {
                writeln!(out, "{k}: {v}")
            } else {
                writeln!(out, "{k}\t{v}")
            };
        }
    }
    Ok(0)
}
