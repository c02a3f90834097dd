"""HTML tables of the audit report: key/value rows, and tables of already escaped cells."""

from __future__ import annotations

from html import escape


def rows(pairs: list[tuple[str, str]], cls: str = "") -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
    return f"<table class='{cls}'>{body}</table>"


def table(header: list[str], rows: list[list[str]], ident: str = "") -> str:
    """A table whose cells are already escaped HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    id_attr = f" id='{ident}'" if ident else ""
    return f"<table{id_attr}><tr>{head}</tr>{body}</table>"
