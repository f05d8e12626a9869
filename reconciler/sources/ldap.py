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
from dataclasses import dataclass
from urllib.parse import urlsplit

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import to_dn

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


# What a person's entries show besides the attributes the join reads: why one does not count.
AFFILIATION_ATTR = "eduPersonAffiliation"
PERSON_SIZE_LIMIT = 50


@dataclass(frozen=True)
class PersonEntries:
    """What the directory holds for one username (``reconcile explain``).

    ``found``: every entry holding the username anywhere under ``scope`` (the parent of the
    configured base, so that a deactivated branch shows), with its affiliations, whether or
    not it matches the configured filter. ``view``: the entries the nightly read sees for
    this person, under the configured base and filter: those holding the username and those
    claiming one of its student numbers (index them with ``general.index_directory`` to get
    the nightly's verdict). ``searches``: LDAP searches made; ``notes``: what could not be
    searched.
    """

    scope: str
    found: list[tuple[DirectoryEntry, tuple[str, ...]]]
    view: list[DirectoryEntry]
    searches: int
    notes: list[str]


def parent_dn(dn: str) -> str:
    """``dc=unicaen,dc=fr`` from ``ou=people,dc=unicaen,dc=fr`` (the DN itself at the top)."""
    parts = to_dn(dn)
    return ",".join(parts[1:]) if len(parts) > 1 else dn


def _search(conn: ldap3.Connection, base: str, query: str, attrs: list[str],
            settings: LdapSettings) -> list[tuple[str, dict]]:
    conn.search(base, query, ldap3.SUBTREE, attributes=attrs, size_limit=PERSON_SIZE_LIMIT,
                time_limit=whole_seconds(settings.timeout_seconds))
    result = conn.result or {}
    if result.get("result") not in (0, 4):  # 4: size limit, the first entries are enough
        raise SourceError(SOURCE, f"search under {base} failed: {result.get('description')}: "
                                  f"{result.get('message')}")
    return [(item.get("dn", ""), item.get("raw_attributes") or {})
            for item in conn.response or [] if item.get("type") == "searchResEntry"]


def search_person(conn: ldap3.Connection, settings: LdapSettings,
                  username: str) -> PersonEntries:
    """The directory's entries for ``username`` (see :class:`PersonEntries`) in two searches:
    the username under the parent of the base (any entry, filter or not), then under the
    base with the configured filter, the username or any student number the first search
    found. Raises :class:`SourceError` when the second search (the nightly's view) fails;
    a refused first search falls back to the base and says so in ``notes``."""
    attrs = [settings.student_id_attr, settings.username_attr, settings.firstname_attr,
             settings.lastname_attr, settings.email_attr]
    login = escape_filter_chars(username.strip().lower())
    notes: list[str] = []
    scope = parent_dn(settings.base)
    searches = 0
    try:
        if not conn.bound:
            conn.bind()
        try:
            searches += 1
            raw = _search(conn, scope, f"({settings.username_attr}={login})",
                          [*attrs, AFFILIATION_ATTR], settings)
        except Exception as exc:  # no access above the base, no such branch...
            notes.append(f"could not search {scope} ({describe(exc)}); only {settings.base} "
                         "was searched")
            scope = settings.base
            searches += 1
            raw = _search(conn, scope, f"({settings.username_attr}={login})",
                          [*attrs, AFFILIATION_ATTR], settings)
        found = [(entry_from_raw(dn, values, settings),
                  tuple(sorted(_values(values, AFFILIATION_ATTR)))) for dn, values in raw]
        numbers = sorted({n for entry, _ in found for n in entry.student_ids})
        claims = "".join(f"({settings.student_id_attr}={escape_filter_chars(n)})"
                         for n in numbers)
        searches += 1
        view = [entry_from_raw(dn, values, settings) for dn, values in _search(
            conn, settings.base,
            f"(&{settings.filter}(|({settings.username_attr}={login}){claims}))", attrs,
            settings)]
    except SourceError:
        raise
    except Exception as exc:  # ldap3, socket, a bug of ours: never a partial answer
        raise SourceError(SOURCE, f"search for {username} failed: {describe(exc)}") from exc
    return PersonEntries(scope, found, view, searches, notes)
