"""The two Moodle backends the suite runs the same test code on: the project's emulator and
the real Moodle 4.5 site (tests/support/realmoodle.py).

A :class:`Backend` gives what a test may use on both: the URL, a write token and a
read-only token (the real site's two services, which the emulator reproduces), clients,
seeding through the web services, and a switch that makes mail sending fail. What exists on
one side only (the emulator's fault injection and call counters) is reached through
``backend.emulator`` by tests that run on the emulator alone.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from support import wsseed
from support.realmoodle import RealMoodle

from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.client import MoodleClient

EMULATOR_TOKEN = "e2e-token"
EMULATOR_READONLY_TOKEN = "e2e-readonly-token"
KINDS = ("emulator", "real")


def closed_port() -> int:
    """A loopback TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    """One Moodle site a test talks to. ``kind`` is ``emulator`` or ``real``."""

    kind: str
    url: str
    token: str
    readonly_token: str
    max_input_vars: int
    emulator: MoodleEmulator | None = None
    site: RealMoodle | None = None

    def client(self, *, readonly: bool = False, **options: Any) -> MoodleClient:
        """A client with the write token (or the read-only one); close it after use."""
        options.setdefault("max_input_vars", self.max_input_vars)
        return MoodleClient(self.url, self.readonly_token if readonly else self.token,
                            **options)

    def seed(self, spec: Mapping[str, Any]) -> dict[str, dict[str, int]]:
        """Create ``spec`` through the web services (support/wsseed.py); ids by key."""
        with self.client() as client:
            return wsseed.seed(client, spec)

    def state(self) -> dict[str, Any]:
        """The site's state keyed by names, as the differential test compares it."""
        with self.client() as client:
            return wsseed.read_state(client)

    @contextmanager
    def mail_failing(self) -> Iterator[None]:
        """Every mail Moodle tries to send fails inside the block.

        Emulator: its ``mail_fails`` switch. Real site: the core setting ``smtphosts``
        points at a closed loopback port (set with Moodle's ``admin/cli/cfg.php``, restored
        afterwards): PHPMailer's connection is refused, the message manager throws
        ``Message was not sent.``. (Stopping the bundle's SMTP sink does the same, but its
        restart belongs to the bundle's scripts.)
        """
        if self.emulator is not None:
            self.emulator.set_config(mail_fails=True)
            try:
                yield
            finally:
                self.emulator.set_config(mail_fails=False)
            return
        assert self.site is not None
        before = self.site.config("smtphosts")
        self.site.config("smtphosts", f"127.0.0.1:{closed_port()}")
        try:
            yield
        finally:
            self.site.config("smtphosts", before)


@contextmanager
def emulator_backend(**config: Any) -> Iterator[Backend]:
    """A fresh emulator with the real site's two services (write and read-only tokens)."""
    settings = EmulatorConfig(token=EMULATOR_TOKEN, readonly_token=EMULATOR_READONLY_TOKEN,
                              **config)
    with MoodleEmulator(settings) as emu:
        yield Backend("emulator", emu.url, EMULATOR_TOKEN, EMULATOR_READONLY_TOKEN,
                      settings.max_input_vars, emulator=emu)


def site_backend(site: RealMoodle) -> Backend:
    """The real site as a backend (its state is whatever earlier tests left)."""
    return Backend("real", site.url, site.token, site.readonly_token, site.max_input_vars,
                   site=site)


def clean_site_backend(site: RealMoodle) -> Backend:
    """The real site with every course and cohort deleted (about 1 s; users and categories
    stay): a clean platform for one scenario without resetting the whole site."""
    backend = site_backend(site)
    with backend.client() as client:
        wsseed.wipe(client)
    return backend
