"""Dump names: the policy's key template (``storage.dump_key``), written and parsed.

A template is literal text with three fields: ``{database}``, ``{timestamp}`` (or
``{timestamp:<strftime>}``; default ``%Y%m%d%H%M%S``, read as UTC) and, optionally, ``{format}``:
the dump's format by its extension (``sql.gz`` plain SQL gzipped, ``dump`` custom format, ``sql``,
``tar``). The default, ``{database}_{timestamp}.{format}``, names what AKKO's CronJobs write (``.sql.gz``).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_TEMPLATE = "{database}_{timestamp}.{format}"
DEFAULT_GLOBALS_TEMPLATE = "_globals_{timestamp}.sql.gz"
DEFAULT_TIME = "%Y%m%d%H%M%S"
FORMATS = ("sql.gz", "dump", "sql", "tar")
MANIFEST_SUFFIX = ".manifest.json"
_DIRECTIVES = {"Y": r"\d{4}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}", "S": r"\d{2}",
               "y": r"\d{2}", "j": r"\d{3}", "f": r"\d{6}", "%": "%"}


class TemplateError(ValueError):
    """A key template that cannot name dumps (the policy loader names the key)."""


@dataclass(frozen=True)
class DumpName:
    """What a dump key says: whose dump, taken when, in which format."""

    database: str
    taken_at: datetime
    format: str


@dataclass(frozen=True)
class KeyTemplate:
    """One compiled template; ``parse`` is None for a key it does not describe."""

    text: str
    time_format: str
    pattern: re.Pattern[str]
    fixed_format: str | None  # the format a template without ``{format}`` implies by its ending

    def key(self, database: str, when: datetime, fmt: str | None = None) -> str:
        fmt = fmt or self.fixed_format or FORMATS[0]
        if self.fixed_format is not None and fmt != self.fixed_format:
            raise TemplateError(f"the key template {self.text!r} cannot name a {fmt} dump")
        stamp = when.astimezone(UTC).strftime(self.time_format)
        return self.text.replace(f"{{timestamp:{self.time_format}}}", stamp).replace(
            "{timestamp}", stamp).replace("{database}", database).replace("{format}", fmt)

    def parse(self, key: str) -> DumpName | None:
        match = self.pattern.fullmatch(key)
        if match is None:
            return None
        try:
            when = datetime.strptime(match["timestamp"], self.time_format).replace(tzinfo=UTC)
        except ValueError:
            return None
        fmt = match.groupdict().get("format") or self.fixed_format or FORMATS[0]
        return DumpName(match.groupdict().get("database") or "", when, fmt)

    def prefix(self, database: str) -> str:
        """The literal start of every key of ``database`` (what to list under)."""
        head = self.text.replace("{database}", database)
        return head[: head.index("{")] if "{" in head else head


def compile_template(text: str, need_database: bool = True) -> KeyTemplate:
    """Compile ``text``; TemplateError names what is wrong with it."""
    parts: list[str] = []
    fields: list[str] = []
    time_format = DEFAULT_TIME
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as err:
        raise TemplateError(f"{text!r} is not a key template: {err}") from None
    for literal, name, spec, _ in parsed:
        parts.append(re.escape(literal))
        if name is None:
            continue
        if name in fields or name not in ("database", "timestamp", "format"):
            raise TemplateError(f"{text!r}: field {{{name}}} is unknown or repeated "
                                "(expected {database}, {timestamp[:strftime]}, {format})")
        fields.append(name)
        if name == "timestamp":
            time_format = spec or DEFAULT_TIME
            parts.append(f"(?P<timestamp>{_time_regex(time_format, text)})")
        elif name == "database":
            parts.append(r"(?P<database>.+?)")
        else:
            parts.append(f"(?P<format>{'|'.join(re.escape(f) for f in FORMATS)})")
    if "timestamp" not in fields or (need_database and "database" not in fields):
        wanted = "{database} and {timestamp}" if need_database else "{timestamp}"
        raise TemplateError(f"{text!r} must contain {wanted}")
    fixed = None if "format" in fields else next((f for f in FORMATS if text.endswith("." + f)), FORMATS[0])
    # DOTALL: a database name may hold a newline
    return KeyTemplate(text, time_format, re.compile("".join(parts), re.DOTALL), fixed)


def _time_regex(fmt: str, text: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] != "%":
            out.append(re.escape(fmt[i]))
            i += 1
            continue
        directive = fmt[i + 1: i + 2]
        if directive not in _DIRECTIVES:
            raise TemplateError(f"{text!r}: %{directive} is not a supported time directive "
                                f"(use {', '.join('%' + d for d in _DIRECTIVES)})")
        out.append(_DIRECTIVES[directive])
        i += 2
    return "".join(out)
