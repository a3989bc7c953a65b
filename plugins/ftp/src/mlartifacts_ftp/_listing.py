"""Directory listings: MLSD where the server has it, else LIST output parsed.

MLSD (RFC 3659) is machine-readable and ftplib parses it. Servers without it
(vsftpd, for one) only have LIST, whose output is meant for people: the Unix
``ls -l`` layout nearly everyone uses is parsed here, and the DOS layout of
IIS-style servers too.
"""

from __future__ import annotations

import calendar
import ftplib
import re
from dataclasses import dataclass

from ._client import Connection
from ._errors import reply_code

__all__ = ["Entry", "list_directory", "parse_list_line", "parse_mlst"]


@dataclass(frozen=True)
class Entry:
    """One name in a directory."""

    name: str
    kind: str  # "file", "dir" or "link" (a link's target type is unknown until looked up)
    size: int | None = None
    modified: float | None = None


_UNIX = re.compile(
    r"^(?P<type>[-dlbcps])[-rwxsStTl]{9}[.+@]?\s+\d+\s+\S+\s+\S+\s+(?P<size>\d+)\s+"
    r"(?P<month>[A-Za-z]{3})\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}) (?P<name>.+)$"
)
_DOS = re.compile(
    r"^\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}(?:[AP]M)?\s+(?:(?P<dir><DIR>)|(?P<size>\d+))\s+(?P<name>.+)$",
    re.IGNORECASE,
)


def parse_list_line(line: str) -> Entry | None:
    """One line of LIST output, or None for what is not an entry (``total 12``, ``.``)."""
    match = _UNIX.match(line)
    if match:
        name = match["name"]
        kind = {"d": "dir", "l": "link", "-": "file"}.get(match["type"])
        if kind is None:
            return None  # devices, sockets, pipes: not artifacts
        if kind == "link":
            name = name.split(" -> ", 1)[0]
        size = int(match["size"]) if kind == "file" else None
        return None if name in (".", "..") else Entry(name, kind, size)
    match = _DOS.match(line)
    if match:
        name = match["name"]
        if match["dir"]:
            return None if name in (".", "..") else Entry(name, "dir")
        return Entry(name, "file", int(match["size"]))
    return None


def _mlsx_entry(name: str, facts: dict[str, str]) -> Entry | None:
    kind = facts.get("type", "").lower()
    if kind in ("cdir", "pdir") or name in (".", ".."):
        return None
    if kind.startswith("os.unix=slink") or kind.startswith("os.unix=symlink"):
        return Entry(name, "link")
    if kind not in ("file", "dir"):
        return None
    size = int(facts["size"]) if kind == "file" and facts.get("size", "").isdigit() else None
    return Entry(name, kind, size, _mlsx_time(facts.get("modify")))


def _mlsx_time(value: str | None) -> float | None:
    if not value or len(value) < 14 or not value[:14].isdigit():
        return None
    parts = (value[0:4], value[4:6], value[6:8], value[8:10], value[10:12], value[12:14])
    year, month, day, hour, minute, second = (int(p) for p in parts)
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def parse_mlst(reply: str) -> Entry | None:
    """The facts line of an MLST reply (``250-...`` / `` type=file;size=5; /path`` / ``250 End``)."""
    for line in reply.splitlines():
        if line.startswith(" "):
            facts_text, _, name = line[1:].partition(" ")
            facts = {}
            for fact in facts_text.rstrip(";").split(";"):
                key, _, value = fact.partition("=")
                facts[key.lower()] = value
            return _mlsx_entry(name.rsplit("/", 1)[-1] or name, facts)
    return None


def list_directory(connection: Connection, directory: str) -> list[Entry] | None:
    """The entries of ``directory``, or None when it is not a directory (or is missing)."""
    ftp = connection.ftp
    if connection.mlst:
        connection.text_listing()
        try:
            found = [_mlsx_entry(name, facts) for name, facts in ftp.mlsd(directory)]
        except ftplib.error_perm as exc:
            if reply_code(exc) in ("500", "502"):
                connection.mlst = False  # advertised but not there after all: fall back to LIST
                return list_directory(connection, directory)
            return None  # 550 / 501: missing, or a file
        return [entry for entry in found if entry is not None]
    # LIST takes a path that some servers glob (vsftpd) and others split on spaces:
    # change into the directory instead, which also tells a directory from the rest.
    try:
        ftp.cwd(directory)
    except ftplib.error_perm:
        return None
    lines: list[str] = []
    connection.text_listing()
    if connection.list_all:
        try:
            ftp.retrlines("LIST -a", lines.append)  # -a: names starting with a dot too
        except ftplib.error_perm:
            connection.list_all = False
            lines = []
    if not connection.list_all:
        ftp.retrlines("LIST", lines.append)
    return [entry for entry in map(parse_list_line, lines) if entry is not None]
