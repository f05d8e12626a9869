"""A throw-away OpenLDAP slapd on 127.0.0.1 for tests and benchmarks.

Writes a slapd.conf in a temporary folder (mdb backend, the project's SUPANN schema, a server
size limit), loads the seed LDIF offline with slapadd (fast, even for 40,000 entries), starts
/usr/sbin/slapd on a free port and waits until it answers a bind. A read-only service account
``cn=reader`` is subject to the size limit, as the reconciler's account is in production.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SYSTEM_SCHEMA = Path("/etc/ldap/schema")
PROJECT_SCHEMA = (
    Path(__file__).resolve().parents[2] / "reconciler" / "sources" / "schema" / "supann-min.schema"
)

SUFFIX = "dc=unicaen,dc=fr"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "admin-secret"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PW = "reader-secret"


def slapd_available() -> bool:
    return SLAPD.exists() and SLAPADD.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_ldif() -> str:
    """The suffix, the branches (people, deactivated) and the reader account."""
    return f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: unicaen
o: Universite de Caen Normandie (test)

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=deactivated,{SUFFIX}
objectClass: organizationalUnit
ou: deactivated

dn: {READER_DN}
objectClass: person
cn: reader
sn: reader
userPassword: {READER_PW}

"""


def _conf(workdir: Path, size_limit: int, tls: tuple[Path, Path] | None) -> str:
    tls_lines = f"TLSCertificateFile {tls[0]}\nTLSCertificateKeyFile {tls[1]}\n" if tls else ""
    return f"""include {SYSTEM_SCHEMA}/core.schema
include {SYSTEM_SCHEMA}/cosine.schema
include {SYSTEM_SCHEMA}/inetorgperson.schema
include {PROJECT_SCHEMA}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {workdir}/slapd.pid
argsfile {workdir}/slapd.args
{tls_lines}# The server size limit applies to every search but paged ones, which may page through all.
sizelimit size.soft={size_limit} size.hard={size_limit} size.prtotal=unlimited

database mdb
maxsize 1073741824
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {workdir}/db
index objectClass eq
index eduPersonAffiliation eq
index supannEtuId eq
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{READER_DN}" read by * none
"""


@dataclass
class Slapd:
    """One running slapd; ``stop()`` kills it and removes its folder."""

    workdir: Path
    port: int
    process: subprocess.Popen[bytes]
    ldaps_port: int | None = None  # set when started with a certificate

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}/"

    def environ(self) -> dict[str, str]:
        """The environment the reconciler reads (default variable names)."""
        return {"LDAP_URL": self.url, "LDAP_BIND_DN": READER_DN, "LDAP_BIND_PASSWORD": READER_PW}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def make_certificate(workdir: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A self-signed server certificate for ``host`` (it is its own CA file).

    Made with ``cryptography``, which oracledb already requires, so no openssl binary needed.
    """
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "server.crt", workdir / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    return cert_path, key_path


def start_slapd(workdir: Path, seed_ldif: str, *, size_limit: int = 100,
                tls: tuple[Path, Path] | None = None) -> Slapd:
    """Write the config, load ``base_ldif() + seed_ldif`` offline, start slapd, wait for it.

    ``tls`` = (certificate, key) enables StartTLS on the plain port and adds an ldaps:// port.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "db").mkdir(exist_ok=True)
    conf = workdir / "slapd.conf"
    conf.write_text(_conf(workdir, size_limit, tls), encoding="utf-8")
    seed = workdir / "seed.ldif"
    seed.write_text(base_ldif() + seed_ldif, encoding="utf-8")
    load = subprocess.run(
        [str(SLAPADD), "-q", "-f", str(conf), "-l", str(seed)],
        capture_output=True, text=True, check=False,
    )
    if load.returncode != 0:
        raise RuntimeError(f"slapadd failed: {load.stderr.strip()[-2000:]}")
    port = free_port()
    ldaps_port = free_port() if tls else None
    urls = f"ldap://127.0.0.1:{port}/" + (f" ldaps://127.0.0.1:{ldaps_port}/" if tls else "")
    log = open(workdir / "slapd.log", "wb")  # noqa: SIM115 - kept open for the process' life
    # "-d 0" keeps slapd in the foreground so that we own (and can kill) the process.
    proc = subprocess.Popen(
        [str(SLAPD), "-d", "0", "-h", urls, "-f", str(conf)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    server = Slapd(workdir=workdir, port=port, process=proc, ldaps_port=ldaps_port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                "slapd exited: " + (workdir / "slapd.log").read_text(errors="replace")[-2000:]
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("slapd did not answer within 20 s")
