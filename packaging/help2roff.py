#!/usr/bin/python3
"""Turns a Rostfix command's man-page style --help text (NAME, SYNOPSIS, DESCRIPTION,
OPTIONS, EXIT STATUS, SEE ALSO as unindented headings) into a roff manual page, so the
package ships man pages that always match the program's own help.

usage: PROGRAM --help | help2roff.py NAME SECTION VERSION > NAME.SECTION
"""
import sys


def escape(line: str) -> str:
    """roff-safe text: backslashes doubled, leading . and ' neutralised, - as minus."""
    line = line.replace("\\", "\\e").replace("-", "\\-")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 64
    name, section, version = sys.argv[1:]
    text = sys.stdin.read().splitlines()
    out = [
        f'.TH {name.upper()} {section} "" "rostfix {escape(version)}" "Rostfix"',
    ]
    # The help indents section bodies for a terminal; man indents them itself, so
    # the smallest indentation of the body lines is removed.
    indents = [len(l) - len(l.lstrip()) for l in text if l.strip() and l[0] in " \t"]
    common = min(indents, default=0)
    heading_seen = False
    for line in text:
        stripped = line.strip()
        is_heading = bool(stripped) and line == stripped and stripped.upper() == stripped \
            and any(c.isalpha() for c in stripped)
        if is_heading:
            if heading_seen:
                out.append(".fi")
            out.append(f".SH {escape(stripped)}")
            # Keep the help's own layout: it is already formatted for a terminal.
            out.append(".nf")
            heading_seen = True
        elif not heading_seen:
            # Text before the first heading (a one-line summary): its own section.
            out.append(".SH NAME")
            out.append(".nf")
            out.append(escape(stripped))
            heading_seen = True
        elif stripped:
            out.append(escape(line.rstrip()[common:] if line[:common].isspace() else line.strip()))
        else:
            out.append("")
    if heading_seen:
        out.append(".fi")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
