//! The table of known parameters: name, default (unexpanded, Postfix syntax) and kind.

/// What a parameter's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Str,
    /// yes/no (also true/false, case-insensitive).
    Bool,
    /// A non-negative integer.
    Int,
    /// A time: a number with an optional unit s, m, h, d, w; the char is the default unit.
    Time(char),
    /// A comma/white-space separated list.
    List,
}

/// One known parameter.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ParamKind,
}

/// Every parameter Rostfix knows, sorted by name (postconf -d prints them in this order).
pub static PARAMS: &[ParamDef] = &[];

/// Looks a parameter up by name.
pub fn lookup_param(name: &str) -> Option<&'static ParamDef> {
    let _ = name;
    todo!()
}
