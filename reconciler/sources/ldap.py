"""The SUPANN directory: student accounts read with a paged search (RFC 2696).

Any failure while connecting or reading (ldap3's own errors, but also the socket layer,
``struct``, TLS, or a bug of ours; including a size limit hit or a failure on a later page)
raises :class:`SourceError`: a partial answer is never returned as if it were complete.

Multi-valued attributes (LDAP promises no order of values): every value of the student-id
and username attributes is kept (see :class:`DirectoryEntry`); names and mail, used only to
create accounts, take the smallest value in code-point order so that the choice does not
depend on the order the server sends.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

import ldap3

from ..settings import LdapSettings
from .model import DirectoryEntry, SourceError, describe

SOURCE = "LDAP"
PAGED_OID = "1.2.840.113556.1.4.319"


def whole_seconds(seconds: float) -> int:
    """A timeout rounded *up* to whole seconds (at least 1).

    ldap3 packs the receive timeout into ``SO_RCVTIMEO`` as an integer on Linux (a float
    raises ``struct.error``) and the LDAP search time limit is whole seconds, 0 meaning none.
    """
    return max(1, math.ceil(seconds))


def connect(settings: LdapSettings, environ: Mapping[str, str]) -> ldap3.Connection:
    """Open and bind a read-only connection from the environment variables in the settings.

    Takes the settings' variable names (URL, bind DN, password) and timeout in seconds
    (float; the receive timeout is rounded up to whole seconds). Returns a bound
    ``ldap3.Connection``. Raises :class:`SourceError` for a missing variable, a bad URL and
    any failure while connecting, starting TLS or binding, whatever its exception type.
    """
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
    user = environ.get(settings.bind_dn_env) or None
    password = environ.get(settings.password_env) or None
    if user and not password:
        raise SourceError(SOURCE, f"environment variable {settings.password_env} is not set")
    try:
        server = ldap3.Server(
            parts.hostname, port=parts.port, use_ssl=use_ssl, tls=tls,
            get_info=ldap3.NONE, connect_timeout=settings.timeout_seconds,
        )
        conn = ldap3.Connection(
            server, user=user, password=password, read_only=True, raise_exceptions=True,
            receive_timeout=whole_seconds(settings.timeout_seconds),
            auto_bind=ldap3.AUTO_BIND_NONE,
        )
        conn.open()
        if settings.start_tls:
            conn.start_tls()
        conn.bind()
    except Exception as exc:  # ldap3, socket, ssl, struct...: all mean "not read"
        raise SourceError(SOURCE, f"cannot connect or bind to {url}: {describe(exc)}") from exc
    return conn


def _values(raw: Mapping[str, list[bytes]], name: str) -> list[str]:
    """Every value of an attribute, stripped, empty ones dropped, in the server's order.

    The name matches case-insensitively (servers return their own case).
    """
    for key, values in raw.items():
        if key.lower() == name.lower():
            decoded = (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                       for v in values)
            return [v.strip() for v in decoded if v.strip()]
    return []


def _one(values: list[str]) -> str:
    """One value of a descriptive attribute, independent of the order the server sent."""
    return min(values) if values else ""


def entry_from_raw(dn: str, raw: Mapping[str, list[bytes]],
                   settings: LdapSettings) -> DirectoryEntry:
    """A :class:`DirectoryEntry` from one search result's raw attributes (bytes or str)."""
    return DirectoryEntry(
        dn=dn,
        student_ids=tuple(sorted(set(_values(raw, settings.student_id_attr)))),
        usernames=tuple(sorted({v.lower() for v in _values(raw, settings.username_attr)})),
        firstname=_one(_values(raw, settings.firstname_attr)),
        lastname=_one(_values(raw, settings.lastname_attr)),
        email=_one(_values(raw, settings.email_attr)),
    )


def _pages(conn: ldap3.Connection, settings: LdapSettings, attrs: list[str]) -> Iterator[list]:
    cookie: bytes | None = None
    while True:
        conn.search(
            settings.base, settings.filter, ldap3.SUBTREE, attributes=attrs,
            paged_size=settings.page_size, paged_cookie=cookie,
            time_limit=whole_seconds(settings.timeout_seconds),
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
    """Every entry under the base matching the filter, plus read statistics.

    Takes a connection (bound or not) and the settings (base, filter, attribute names, page
    size). Returns the entries and ``{"entries", "pages", "seconds", "multi_valued"}``, the
    last counting, per attribute read, the entries that hold several values. Raises
    :class:`SourceError` on any failure, naming the page it happened on.
    """
    attrs = [settings.student_id_attr, settings.username_attr, settings.firstname_attr,
             settings.lastname_attr, settings.email_attr]
    started = time.monotonic()
    entries: list[DirectoryEntry] = []
    multi_valued = dict.fromkeys(attrs, 0)
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
                for name in attrs:
                    if len(_values(raw, name)) > 1:
                        multi_valued[name] += 1
                entries.append(entry_from_raw(item.get("dn", ""), raw, settings))
    except SourceError:
        raise
    except Exception as exc:  # ldap3, socket, struct, a bug of ours: never a partial list
        raise SourceError(SOURCE, f"search under {settings.base} failed on page {pages + 1}: "
                                  f"{describe(exc)}") from exc
    stats = {"entries": len(entries), "pages": pages,
             "seconds": round(time.monotonic() - started, 3),
             "multi_valued": {k: v for k, v in multi_valued.items() if v}}
    return entries, stats
