"""The shipped nginx config in front of the real queue service, over HTTPS on loopback.

nginx (Debian's package `nginx`; `scripts/install.sh --test` installs it) runs
deploy/nginx/medaug.conf with only its ports, certificate and log paths changed, and the
service is `medaug queue serve` in its own process. A missing nginx fails the test: CI has it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from queue_samples import make_samples
from typer.testing import CliRunner

from medaug.cli import app
from review_queue.cli import check_listen
from review_queue.store import QueueStore

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "nginx" / "medaug.conf"
PROBE = "日志探针"  # in every queued sample's text and in the correction: must appear in no log
CORRECTION = "更正：日志探针的修改内容，应先做心电图"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.fail(
            "nginx not found: install Debian's nginx package (scripts/install.sh --test does: "
            "apt-get install nginx)"
        )
    return found


def _write_certs(d: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "medaug test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = d / "ca.pem", d / "fullchain.pem", d / "privkey.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_pem.chmod(0o600)
    return ca_pem, cert_pem, key_pem


def _render(template: str, subs: dict[str, str]) -> str:
    """The shipped config with ports and paths replaced; each replaced text must be in it."""
    for old, new in subs.items():
        assert old in template, f"{TEMPLATE}: expected {old!r} (the test replaces it)"
        template = template.replace(old, new)
    return template


def _wait(what: str, ok, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if ok():
                return
        except (OSError, httpx.HTTPError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not start in {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.1)


def _stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _listening(port: int) -> list[str]:
    """Local addresses listening on TCP `port` (IPv4 and IPv6), from /proc/net."""
    found = []
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(addr)
                if name == "tcp":
                    found.append(str(ipaddress.IPv4Address(raw[::-1])))
                else:  # four little-endian 32-bit words
                    found.append(
                        str(ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))))
                    )
    return found


@dataclass
class Deployment:
    https: str
    http: str
    service: str
    ca: Path
    token: str
    nginx_logs: Path
    service_log: Path
    ports: tuple[int, int, int]
    item_ids: list[str]

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca)), timeout=30, **kw)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with pytest.MonkeyPatch.context() as mp:  # the audit key from the environment, as docs/deploy.md says
        mp.setenv("MEDAUG_AUDIT_KEY", secrets.token_hex(32))
        yield from _deploy(tmp_path_factory)


def _deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    nginx = _nginx()
    tmp = tmp_path_factory.mktemp("deploy")
    for sub in ("logs", "temp"):
        (tmp / sub).mkdir()
    ca, cert, key = _write_certs(tmp)

    db = f"sqlite:///{tmp / 'queue.db'}"
    store = QueueStore.open(db)
    samples = make_samples(3, prefix=PROBE)
    store.push(samples, run_id="deploy")
    token = store.add_user("dr-li", "reviewer")
    store.close()

    svc_port, http_port, https_port = _free_port(), _free_port(), _free_port()
    service_log = tmp / "service.log"
    with service_log.open("wb") as out:
        service = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from medaug.cli import app; app(prog_name='medaug')",
                "queue",
                "serve",
                "--db",
                db,
                "--port",
                str(svc_port),
                "--forwarded-allow-ips",
                "127.0.0.1",
                "--sweep-seconds",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    procs: list[tuple[subprocess.Popen, int]] = [(service, signal.SIGTERM)]
    try:
        _wait(
            "medaug queue serve",
            lambda: httpx.get(f"http://127.0.0.1:{svc_port}/", timeout=2).status_code == 200,
            service,
            service_log,
        )

        site = _render(
            TEMPLATE.read_text(encoding="utf-8"),
            {
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
                "return 301 https://$host$request_uri;": f"return 301 https://$host:{https_port}$request_uri;",
                "server 127.0.0.1:8765;": f"server 127.0.0.1:{svc_port};",
                "/etc/ssl/medaug/fullchain.pem": str(cert),
                "/etc/ssl/medaug/privkey.pem": str(key),
                "/var/log/nginx/": f"{tmp / 'logs'}/",
            },
        )
        (tmp / "medaug.conf").write_text(site, encoding="utf-8")
        temp = tmp / "temp"
        (tmp / "nginx.conf").write_text(
            # As root, nginx's workers would drop to `nobody`, which cannot enter pytest's 0700 folders.
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'logs/error.log'} warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n  default_type application/octet-stream;\n  access_log off;\n"
            + "".join(
                f"  {k}_temp_path {temp / k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"  include {tmp / 'medaug.conf'};\n}}\n",
            encoding="utf-8",
        )
        nginx_log = tmp / "logs" / "nginx.out"
        with nginx_log.open("wb") as out:
            proxy = subprocess.Popen(
                [nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "logs/error.log")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        procs.append((proxy, signal.SIGQUIT))
        ctx = ssl.create_default_context(cafile=str(ca))
        _wait(
            "nginx",
            lambda: httpx.get(f"https://127.0.0.1:{https_port}/", verify=ctx, timeout=2).status_code == 200,
            proxy,
            tmp / "logs/error.log",
        )
        yield Deployment(
            https=f"https://127.0.0.1:{https_port}",
            http=f"http://127.0.0.1:{http_port}",
            service=f"http://127.0.0.1:{svc_port}",
            ca=ca,
            token=token,
            nginx_logs=tmp / "logs",
            service_log=service_log,
            ports=(svc_port, http_port, https_port),
            item_ids=sorted(s.id for s in samples),
        )
    finally:
        for proc, sig in reversed(procs):
            _stop(proc, sig)


def test_only_loopback_listens(deployment: Deployment) -> None:
    for port in deployment.ports:
        assert _listening(port) == ["127.0.0.1"], f"port {port}: {_listening(port)}"


def test_page_and_api_over_verified_https(deployment: Deployment) -> None:
    with deployment.client() as c:
        page = c.get(deployment.https + "/")
        assert page.status_code == 200 and "医学数据审核" in page.text
        assert c.get(deployment.https + "/static/app.js").status_code == 200

        assert c.get(deployment.https + "/api/me").status_code == 401
        auth = {"Authorization": f"Bearer {deployment.token}"}
        me = c.get(deployment.https + "/api/me", headers=auth)
        assert me.status_code == 200 and me.json()["name"] == "dr-li"

        got = c.post(deployment.https + "/api/pull", json={"size": 3}, headers=auth)
        assert got.status_code == 200
        items = got.json()["items"]
        assert sorted(i["id"] for i in items) == deployment.item_ids
        assert all(PROBE in i["sample"]["instruction"] for i in items)
        done = c.post(
            deployment.https + f"/api/items/{items[0]['id']}/submit",
            headers=auth,
            json={"decision": "correct", "output": CORRECTION},
        )
        assert done.status_code == 200 and done.json() == {"id": items[0]["id"], "status": "open"}

    # The certificate is checked: a client that does not trust the test CA is refused.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(deployment.https + "/", timeout=10)


def test_plain_http_redirects_the_page_and_refuses_the_api(deployment: Deployment) -> None:
    r = httpx.get(deployment.http + "/", timeout=10)
    assert r.status_code == 301 and r.headers["location"] == deployment.https + "/"
    r = httpx.get(deployment.http + "/static/app.js?v=1", timeout=10)
    assert r.status_code == 301 and r.headers["location"] == deployment.https + "/static/app.js?v=1"
    r = httpx.post(
        deployment.http + "/api/pull",
        json={"size": 1},
        timeout=10,
        headers={"Authorization": f"Bearer {deployment.token}"},
    )
    assert r.status_code == 403 and "https only" in r.text and "location" not in r.headers


def test_security_headers_once_each(deployment: Deployment) -> None:
    with deployment.client() as c:
        page = c.get(deployment.https + "/")
        api = c.get(deployment.https + "/api/me", headers={"Authorization": f"Bearer {deployment.token}"})
        refused = c.get(deployment.https + "/api/me")
    for r in (page, api, refused):
        h = r.headers
        hsts = h.get_list("strict-transport-security")
        assert len(hsts) == 1 and int(hsts[0].split("max-age=")[1].split(";")[0]) >= 31536000, hsts
        assert h.get_list("x-content-type-options") == ["nosniff"]
        csp = h.get_list("content-security-policy")
        assert len(csp) == 1 and "frame-ancestors" in csp[0], csp
        assert len(h.get_list("referrer-policy")) == 1
        assert h.get("server") == "nginx"  # no version, and not the service's own banner
    for r in (api, refused):
        assert "no-store" in ",".join(r.headers.get_list("cache-control")), r.headers


def test_service_sees_https_and_the_proxys_client_address(deployment: Deployment) -> None:
    # Starlette's trailing-slash redirect is built from the scheme and Host the service sees.
    spoof = {"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.9"}
    with deployment.client() as c:
        r = c.get(deployment.https + "/api/me/", headers=spoof)
    assert r.status_code == 307 and r.headers["location"] == deployment.https + "/api/me"
    # Straight to the service (no proxy): plain http, which shows the check above can fail.
    r = httpx.get(deployment.service + "/api/me/", timeout=10)
    assert r.status_code == 307 and r.headers["location"] == deployment.service + "/api/me"
    time.sleep(0.5)  # let the service flush its access log line
    log = deployment.service_log.read_text(encoding="utf-8", errors="replace")
    assert '"GET /api/me/ HTTP/1.1" 307' in log
    assert "203.0.113.9" not in log  # the proxy replaced the client's X-Forwarded-For


def test_no_patient_text_or_token_in_any_log(deployment: Deployment) -> None:
    with deployment.client() as c:  # a request with a query string, as the ICD-10 picker sends
        r = c.get(
            deployment.https + "/api/icd10",
            params={"q": PROBE},
            headers={"Authorization": f"Bearer {deployment.token}"},
        )
        assert r.status_code == 200
    time.sleep(0.5)
    logs = [deployment.service_log, *sorted(deployment.nginx_logs.iterdir())]
    access = (deployment.nginx_logs / "medaug-access.log").read_text(encoding="utf-8")
    assert '"GET /api/icd10 HTTP/1.1" 200' in access and '"POST /api/pull HTTP/1.1" 200' in access
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in (PROBE, quote(PROBE), CORRECTION, deployment.token):
            assert secret not in text, f"{path.name} contains {secret[:12]}…"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "refusing to listen on '0.0.0.0'"),
        (["--host", "queue.hospital.example"], "must sit behind a TLS reverse proxy"),
        (["--host", "10.1.2.3", "--allow-remote", "--forwarded-allow-ips", "*"], "name the proxy's address"),
        (["--forwarded-allow-ips", "proxy.hospital.example"], "not an IP address or network"),
    ],
)
def test_serve_refuses_unsafe_listening(args: list[str], message: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["queue", "serve", "--db", f"sqlite:///{tmp_path / 'q.db'}", *args])
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert not (tmp_path / "q.db").exists()  # refused before opening anything


def test_remote_listening_warns_and_loopback_does_not() -> None:
    warning = check_listen("10.1.2.3", allow_remote=True, forwarded_allow_ips="10.1.2.1, 10.9.0.0/16")
    assert warning is not None and "TLS reverse proxy" in warning and "10.1.2.1, 10.9.0.0/16" in warning
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert check_listen(host, allow_remote=False, forwarded_allow_ips="127.0.0.1") is None
