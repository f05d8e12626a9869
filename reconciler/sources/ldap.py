"""The SUPANN directory: student accounts read with a paged search (RFC 2696).

Any connection, bind or search failure (including a size limit hit or a failure on a later
page) raises :class:`SourceError`: a partial answer is never returned as if it were complete.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException

from ..settings import LdapSettings
from .model import DirectoryEntry, SourceError

SOURCE = "LDAP"
PAGED_OID = "1.2.840.113556.1.4.319"


def connect(settings: LdapSettings, environ: Mapping[str, str]) -> ldap3.Connection:
    """Open and bind a read-only connection from the environment variables in the settings."""
    url = environ.get(settings.url_env, "").strip()
    if not url:
        raise SourceError(SOURCE, f"environment variable {settings.url_env} is not set")
    parts = urlsplit(url)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise SourceError(SOURCE, f"{settings.url_env} must be an ldap:// or ldaps:// URL")
    use_ssl = parts.scheme == "ldaps"
    tls = None
    if use_ssl or settings.start_tls:
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if settings.validate_certificate else ssl.CERT_NONE,
            ca_certs_file=settings.ca_file,
        )
    server = ldap3.Server(
        parts.hostname, port=parts.port, use_ssl=use_ssl, tls=tls,
        get_info=ldap3.NONE, connect_timeout=settings.timeout_seconds,
    )
    user = environ.get(settings.bind_dn_env) or None
    password = environ.get(settings.password_env) or None
    if user and not password:
        raise SourceError(SOURCE, f"environment variable {settings.password_env} is not set")
    try:
        conn = ldap3.Connection(
            server, user=user, password=password, read_only=True, raise_exceptions=True,
            receive_timeout=settings.timeout_seconds, auto_bind=ldap3.AUTO_BIND_NONE,
        )
        conn.open()
        if settings.start_tls:
            conn.start_tls()
        conn.bind()
    except LDAPException as exc:
        raise SourceError(SOURCE, f"cannot connect or bind to {url}: {_describe(exc)}") from exc
    return conn


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _values(raw: Mapping[str, list[bytes]], name: str) -> list[str]:
    """Attribute values, matching the name case-insensitively (servers return their own case)."""
    for key, values in raw.items():
        if key.lower() == name.lower():
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                    for v in values]
    return []


def _first(raw: Mapping[str, list[bytes]], name: str) -> str:
    values = _values(raw, name)
    return values[0].strip() if values else ""


def _pages(conn: ldap3.Connection, settings: LdapSettings, attrs: list[str]) -> Iterator[list]:
    cookie: bytes | None = None
    while True:
        conn.search(
            settings.base, settings.filter, ldap3.SUBTREE, attributes=attrs,
            paged_size=settings.page_size, paged_cookie=cookie,
            time_limit=int(settings.timeout_seconds),
        )
        result = conn.result or {}
        # search() returns False for "no entries" too, so check the result code itself; this
        # matters for an injected connection that does not raise on errors.
        if result.get("result") != 0:
            raise SourceError(SOURCE, f"search failed: {result.get('description')}: "
                                      f"{result.get('message')}")
        yield conn.response or []
        control = (result.get("controls") or {}).get(PAGED_OID)
        cookie = control["value"]["cookie"] if control else None
        if not cookie:
            return


def read_entries(
    conn: ldap3.Connection, settings: LdapSettings,
) -> tuple[list[DirectoryEntry], dict]:
    """Every entry under the base matching the filter, plus read statistics."""
    attrs = [settings.student_id_attr, settings.username_attr, settings.firstname_attr,
             settings.lastname_attr, settings.email_attr]
    started = time.monotonic()
    entries: list[DirectoryEntry] = []
    pages = 0
    try:
        if not conn.bound:
            conn.bind()
        for page in _pages(conn, settings, attrs):
            pages += 1
            for item in page:
                if item.get("type") != "searchResEntry":
                    continue  # referrals: the reconciler does not chase them
                raw = item.get("raw_attributes") or {}
                student_id = _first(raw, settings.student_id_attr)
                username = _first(raw, settings.username_attr).lower()
                entries.append(DirectoryEntry(
                    dn=item.get("dn", ""),
                    student_id=student_id or None,
                    username=username or None,
                    firstname=_first(raw, settings.firstname_attr),
                    lastname=_first(raw, settings.lastname_attr),
                    email=_first(raw, settings.email_attr),
                ))
    except SourceError:
        raise
    except LDAPException as exc:
        raise SourceError(SOURCE, f"search under {settings.base} failed on page {pages + 1}: "
                                  f"{_describe(exc)}") from exc
    stats = {"entries": len(entries), "pages": pages,
             "seconds": round(time.monotonic() - started, 3)}
    return entries, stats
