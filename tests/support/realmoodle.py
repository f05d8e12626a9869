"""The real Moodle 4.5 site of the test suite: find it, start it, reset it, change its config.

The site comes from the *realmoodle bundle* (``up.sh DIR`` starts Moodle 4.5.5+ with the
plugin ``local_ws_enrolcohort`` on 127.0.0.1 in about half a minute; ``reset.sh DIR`` brings
it back to pristine in about 4 s). Where it comes from, in order:

1. an already running site: ``MOODLE_URL`` and ``MOODLE_TOKEN`` (and ``MOODLE_READONLY_TOKEN``,
   ``MOODLE_MAX_INPUT_VARS``) as ``up.sh`` prints them, plus ``REALMOODLE_DIR`` (its folder)
   and ``REALMOODLE_BUNDLE`` to reset it — what ``.ci/run`` exports;
2. ``REALMOODLE_BUNDLE`` alone: a site is started in a temporary folder for the session and
   purged at the end;
3. neither: the tests that need it are skipped with one message, unless
   ``REALMOODLE_REQUIRED=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REQUIRED_ENV = "REALMOODLE_REQUIRED"
NOT_AVAILABLE = (
    "no real Moodle: set MOODLE_URL and MOODLE_TOKEN (a running site, with REALMOODLE_DIR and "
    "REALMOODLE_BUNDLE to reset it) or REALMOODLE_BUNDLE (to start one); see README, "
    "'Testing against a real Moodle'"
)


class SiteUnavailable(Exception):
    """The real site cannot be found, started or reset (one line that says why)."""


@dataclass(frozen=True)
class RealMoodle:
    """A running real site. ``dir``/``bundle`` are None when only its URL is known."""

    url: str
    token: str
    readonly_token: str
    max_input_vars: int
    dir: Path | None = None
    bundle: Path | None = None

    @property
    def can_reset(self) -> bool:
        return self.dir is not None and self.bundle is not None

    def environ(self) -> dict[str, str]:
        """The variables ``up.sh`` prints (what the contract tests and a shell read)."""
        env = {
            "MOODLE_URL": self.url,
            "MOODLE_TOKEN": self.token,
            "MOODLE_READONLY_TOKEN": self.readonly_token,
            "MOODLE_MAX_INPUT_VARS": str(self.max_input_vars),
        }
        if self.dir is not None:
            env["REALMOODLE_DIR"] = str(self.dir)
        if self.bundle is not None:
            env["REALMOODLE_BUNDLE"] = str(self.bundle)
        return env

    def reset(self) -> None:
        """``reset.sh``: back to the pristine database and moodledata (about 4 s; the URL
        and tokens do not change). Raises SiteUnavailable when the site's folder is unknown."""
        if not self.can_reset:
            raise SiteUnavailable("cannot reset the real Moodle: REALMOODLE_DIR and "
                                  "REALMOODLE_BUNDLE are not both set")
        _run([str(self.bundle / "reset.sh"), str(self.dir)], "reset.sh")

    def config(self, name: str, value: str | None = None) -> str:
        """Read (or set, then read) one core setting with Moodle's own ``admin/cli/cfg.php``:
        changes outside the web services (e.g. ``smtphosts``), as an administrator would.
        Moodle purges its config cache itself, so the next web-service call sees it."""
        if self.dir is None:
            raise SiteUnavailable("the real Moodle's folder is unknown (set REALMOODLE_DIR)")
        php = shutil.which("php")
        if php is None:
            raise SiteUnavailable("php is not on PATH")
        cfg = str(self.dir / "moodle" / "admin" / "cli" / "cfg.php")
        if value is not None:
            _run([php, cfg, f"--name={name}", f"--set={value}"], "cfg.php")
        return _run([php, cfg, f"--name={name}"], "cfg.php").strip()


def _run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SiteUnavailable(f"{what} failed (exit {done.returncode}): {last}")
    return done.stdout


def _parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line.startswith("MOODLE_"))


def site_from_env(environ: Mapping[str, str]) -> RealMoodle | None:
    """The running site the environment names, or None."""
    url, token = environ.get("MOODLE_URL"), environ.get("MOODLE_TOKEN")
    if not url or not token:
        return None
    folder, bundle = environ.get("REALMOODLE_DIR"), environ.get("REALMOODLE_BUNDLE")
    return RealMoodle(
        url=url,
        token=token,
        readonly_token=environ.get("MOODLE_READONLY_TOKEN", ""),
        max_input_vars=int(environ.get("MOODLE_MAX_INPUT_VARS") or 1000),
        dir=Path(folder) if folder else None,
        bundle=Path(bundle) if bundle else None,
    )


def start_site(bundle: Path, folder: Path) -> RealMoodle:
    """``up.sh folder`` (idempotent: 0.5 s when already up). Raises SiteUnavailable."""
    if not (bundle / "up.sh").is_file():
        raise SiteUnavailable(f"REALMOODLE_BUNDLE={bundle} has no up.sh")
    env = _parse_env(_run(["bash", str(bundle / "up.sh"), str(folder)], "up.sh"))
    site = site_from_env({**env, "REALMOODLE_DIR": str(folder),
                          "REALMOODLE_BUNDLE": str(bundle)})
    if site is None:
        raise SiteUnavailable("up.sh printed no MOODLE_URL/MOODLE_TOKEN")
    return site


def stop_site(site: RealMoodle, purge: bool = True) -> None:
    """``down.sh`` (``--purge`` deletes the folder). Never raises."""
    if site.dir is None or site.bundle is None:
        return
    argv = ["bash", str(site.bundle / "down.sh"), str(site.dir)] + (["--purge"] if purge else [])
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def required(environ: Mapping[str, str] | None = None) -> bool:
    """CI sets REALMOODLE_REQUIRED=1: a missing site is a failure, not a skip."""
    return (environ if environ is not None else os.environ).get(REQUIRED_ENV) == "1"
