//! Lookup tables in Postfix's `type:name` syntax. Not written yet (issue 5).
