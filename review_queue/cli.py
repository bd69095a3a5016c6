"""`medaug queue ...`: serve, push, user add and audit work on the database; pull, submit, stats call the service."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

DB_HELP = "database URL (sqlite:///path or postgresql+psycopg://...); env MEDAUG_QUEUE_DB"
DbOpt = Annotated[str, typer.Option("--db", envvar="MEDAUG_QUEUE_DB", help=DB_HELP)]
UrlOpt = Annotated[str, typer.Option("--url", envvar="MEDAUG_QUEUE_URL", help="queue service URL")]
TokenOpt = Annotated[str, typer.Option("--token", envvar="MEDAUG_TOKEN", help="your API token")]
DEFAULT_SERVICE = "http://127.0.0.1:8765"
HOST_HELP = (
    "address to listen on; anything but loopback needs --allow-remote and a TLS proxy (docs/deploy.md)"
)
HostOpt = Annotated[str, typer.Option(envvar="MEDAUG_QUEUE_HOST", help=HOST_HELP)]
ALLOW_REMOTE_HELP = "allow a non-loopback --host (plain HTTP on the network, for a proxy on another machine)"
FORWARDED_HELP = "comma-separated proxy addresses/networks whose X-Forwarded-For and -Proto are believed"
ForwardedOpt = Annotated[str, typer.Option(envvar="MEDAUG_FORWARDED_ALLOW_IPS", help=FORWARDED_HELP)]
SWEEP_HELP = "how often expired leases are returned to the pool (and audited); 0 turns it off"
MAX_LEASED_HELP = "the most items one person may hold leased at once (a pull returns at most this minus held)"
MAX_LEASE_HELP = (
    "the longest one lease may last from its pull, extensions included [default: 4 × lease-seconds]"
)
ActorOpt = Annotated[str, typer.Option(help="who is recorded in the audit log")]
HOLD_BELOW_HELP = (
    "hold a stratum when the upper Wilson bound of its approval rate falls below this "
    "(after --hold-after decisions); 0 turns holding off"
)
QUOTA_HELP = (
    "pull order: items of a group whose approved count is below its quota first, e.g. area=oncology:200"
)


def _open(db: str, **kwargs: Any) -> Any:
    from review_queue.audit import AuditKeyError
    from review_queue.db import ensure_sqlite_parent
    from review_queue.store import QueueStore

    ensure_sqlite_parent(db)
    try:
        return QueueStore.open(db, **kwargs)
    except AuditKeyError as e:  # a setup error: say what to set, no traceback
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


def check_listen(host: str, *, allow_remote: bool, forwarded_allow_ips: str) -> str | None:
    """Refuse unsafe listening choices; return a warning for a non-loopback address.

    The service speaks plain HTTP and believes X-Forwarded-* from the addresses in
    `forwarded_allow_ips`, so on a network it must only be reachable from its TLS proxy.
    """
    trusted = [t.strip() for t in forwarded_allow_ips.split(",") if t.strip()]
    for t in trusted:
        if t != "*":
            try:
                ipaddress.ip_network(t, strict=False)
            except ValueError as e:
                raise ValueError(f"--forwarded-allow-ips: {t!r} is not an IP address or network") from e
    if _is_loopback(host):
        return None
    if not allow_remote:
        raise ValueError(
            f"refusing to listen on {host!r}: the queue speaks plain HTTP and must sit behind a TLS reverse "
            "proxy. Keep the default 127.0.0.1 with the proxy on this machine, or pass --allow-remote "
            "(and --forwarded-allow-ips PROXY_IP) for a proxy on another one; see docs/deploy.md"
        )
    if "*" in trusted:
        raise ValueError(
            "--forwarded-allow-ips '*' with a non-loopback --host lets any machine that reaches the "
            "port claim any client address and https; name the proxy's address instead"
        )
    return (
        f"listening on {host} over plain HTTP: physicians must reach the queue only through the TLS "
        f"reverse proxy; firewall this port so that only the proxy ({', '.join(trusted) or 'none'}) reaches it"
    )


def _drop_query_string(record: logging.LogRecord) -> bool:
    """Log uvicorn's access line without its query string: the ICD-10 search sends what a physician types."""
    args = record.args
    if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
        record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    import httpx

    if not token:
        raise typer.BadParameter("no token: pass --token or set MEDAUG_TOKEN")
    r = httpx.request(
        method, url.rstrip("/") + path, json=body, timeout=60, headers={"Authorization": f"Bearer {token}"}
    )
    if r.status_code >= 400:
        typer.echo(f"error {r.status_code}: {r.json().get('detail', r.text)}", err=True)
        raise typer.Exit(1)
    return r.json()


def register(app: typer.Typer) -> None:
    """Add the `queue` command group to `app`."""
    from review_queue.store import DEFAULT_MAX_LEASED, DEFAULT_URL

    q = typer.Typer(help="Physician review queue.", no_args_is_help=True)
    audit_app = typer.Typer(help="Tamper-evident audit log.", no_args_is_help=True)
    user_app = typer.Typer(help="Users and tokens.", no_args_is_help=True)
    q.add_typer(audit_app, name="audit")
    q.add_typer(user_app, name="user")
    app.add_typer(q, name="queue")

    @q.command()
    def serve(
        db: DbOpt = DEFAULT_URL,
        host: HostOpt = "127.0.0.1",
        port: Annotated[int, typer.Option(envvar="MEDAUG_QUEUE_PORT")] = 8765,
        allow_remote: Annotated[bool, typer.Option(help=ALLOW_REMOTE_HELP)] = False,
        forwarded_allow_ips: ForwardedOpt = "127.0.0.1",
        access_log: Annotated[bool, typer.Option(help="log one line per request (never bodies)")] = True,
        lease_seconds: float = 1800.0,
        icd10: Annotated[Path | None, typer.Option(help="extra ICD-10 code,name CSV for the picker")] = None,
        sweep_seconds: Annotated[float, typer.Option(help=SWEEP_HELP)] = 60.0,
        max_leased: Annotated[int, typer.Option(min=1, help=MAX_LEASED_HELP)] = DEFAULT_MAX_LEASED,
        max_lease_seconds: Annotated[float | None, typer.Option(min=1.0, help=MAX_LEASE_HELP)] = None,
        hold_below: Annotated[float, typer.Option(min=0.0, max=1.0, help=HOLD_BELOW_HELP)] = 0.5,
        hold_after: Annotated[
            int, typer.Option(min=1, help="decisions a stratum needs before it can be held")
        ] = 50,
        quota: Annotated[list[str] | None, typer.Option(help=QUOTA_HELP)] = None,
        test_models_last: Annotated[
            bool, typer.Option(help="pull samples of test models after all others")
        ] = True,
        releases: Annotated[
            Path | None,
            typer.Option(
                envvar="MEDAUG_DATASETS", help="datasets root: the evidence shows the nearest released rows"
            ),
        ] = None,
    ) -> None:
        """Serve the API and the physicians' page (127.0.0.1 unless told; TLS comes from a reverse proxy)."""
        try:
            warning = check_listen(host, allow_remote=allow_remote, forwarded_allow_ips=forwarded_allow_ips)
        except ValueError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        if warning:
            typer.echo(f"WARNING: {warning}", err=True)
        import uvicorn

        from review_queue.service import create_app

        # hide_parameters: a database error in a request is logged with its SQL but not its values (sample text).
        store = _open(db, engine_kwargs={"hide_parameters": True})
        store.lease_seconds = lease_seconds
        store.max_leased, store.max_lease_seconds = max_leased, max_lease_seconds
        store.warm()  # compile the hot statements before the first physicians arrive
        from review_queue.strata import HoldPolicy, PullOrder

        try:
            store.hold = (
                HoldPolicy(threshold=hold_below, min_decisions=hold_after) if hold_below > 0 else None
            )
            store.order = PullOrder.parse_quotas(quota or [], test_models_last=test_models_last)
        except ValueError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        from review_queue.versions import default_root

        app = create_app(
            store, icd10_path=icd10, sweep_seconds=sweep_seconds or None, releases=releases or default_root()
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="info",
            access_log=access_log,
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
            server_header=False,
        )
        logging.getLogger("uvicorn.access").addFilter(_drop_query_string)  # after Config set logging up
        uvicorn.Server(config).run()

    @q.command()
    def push(
        files: list[Path],
        run_id: Annotated[str, typer.Option("--run-id")],
        db: DbOpt = DEFAULT_URL,
        priority: int = 0,
        actor: str = "pipeline",
    ) -> None:
        """Queue samples from Parquet/JSONL files (de-identified ones only; idempotent on sample id)."""
        from medaug.io import read_samples

        store = _open(db)
        bad = 0
        for f in files:
            read = read_samples(f)
            for err in read.errors:
                typer.echo(f"skipped {err}", err=True)
            res = store.push(read.samples, run_id=run_id, priority=priority, actor=actor)
            for r in res.refusals:
                typer.echo(f"refused {f}: record {r.row} ({r.id}): {r.reason}", err=True)
            bad += len(read.errors) + res.refused
            typer.echo(
                f"{f}: inserted={res.inserted} already_queued={res.already_queued} "
                f"refused={res.refused} unreadable={len(read.errors)}"
            )
        if bad:
            raise typer.Exit(2)

    @q.command()
    def pull(
        url: UrlOpt = DEFAULT_SERVICE,
        token: TokenOpt = "",
        size: int = 10,
        area: list[str] | None = None,
        task: list[str] | None = None,
        label: list[str] | None = None,
        arbitration: bool = False,
    ) -> None:
        """Lease a batch; prints one JSON item per line."""
        if arbitration:
            got = _call(url, token, "POST", "/api/arbitration/pull", {"size": size})
        else:
            got = _call(
                url,
                token,
                "POST",
                "/api/pull",
                {"size": size, "area": area or None, "task": task or None, "label": label or None},
            )
        for item in got["items"]:
            typer.echo(json.dumps(item, ensure_ascii=False))

    @q.command()
    def submit(
        item_id: str,
        decision: Annotated[Path, typer.Argument(help="decision JSON file, '-' for stdin")],
        url: UrlOpt = DEFAULT_SERVICE,
        token: TokenOpt = "",
        arbitrate: bool = False,
    ) -> None:
        """Submit a decision ({"decision": "approve"|"correct"|"reject", ...}) for a leased item."""
        text = sys.stdin.read() if str(decision) == "-" else decision.read_text(encoding="utf-8")
        try:
            body = json.loads(text)
        except json.JSONDecodeError as e:
            raise typer.BadParameter(f"{decision}: line {e.lineno}: not JSON: {e.msg}") from e
        path = f"/api/items/{item_id}/{'arbitrate' if arbitrate else 'submit'}"
        typer.echo(json.dumps(_call(url, token, "POST", path, body), ensure_ascii=False))

    @q.command()
    def stats(url: UrlOpt = DEFAULT_SERVICE, token: TokenOpt = "") -> None:
        """Per-reviewer and per-pair throughput, agreement and Cohen's kappa."""
        from rich.console import Console
        from rich.table import Table

        got = _call(url, token, "GET", "/api/stats")
        con = Console()
        con.print(f"items: {got['items']}  outcomes: {got['outcomes']}")
        t = Table("reviewer", "reviews", "per hour", "agreement", "kappa")
        for r in got["reviewers"]:
            t.add_row(
                r["reviewer"],
                str(r["reviews"]),
                str(r["per_hour"]),
                _fmt(r["agreement_rate"]),
                _fmt(r["kappa"]),
            )
        con.print(t)
        p = Table("pair", "items", "agreement", "kappa")
        for r in got["pairs"]:
            p.add_row(
                " / ".join(r["reviewers"]), str(r["items"]), _fmt(r["agreement_rate"]), _fmt(r["kappa"])
            )
        con.print(p)
        tm = got["time"]
        s = Table("stratum", "decisions", "s/decision", "minutes", "approved", "min/approved")
        for key, r in tm["strata"].items():
            s.add_row(
                key,
                str(r["decisions"]),
                _fmt(r["mean_seconds"], 1),
                _fmt(r["minutes"], 1),
                str(r["approved_items"]),
                _fmt(r["minutes_per_approved"], 2),
            )
        con.print(s)
        con.print(
            f"physician minutes per approved sample: {_fmt(tm['minutes_per_approved'], 2)} "
            f"({tm['total_minutes']:.1f} review minutes, {tm['approved_items']} approved; a decision "
            f"counts at most {tm['idle_seconds']:.0f} s)"
        )

    @q.command()
    def strata(
        db: DbOpt = DEFAULT_URL,
        release: Annotated[
            str | None, typer.Option(help="put this held stratum's items back in the pool")
        ] = None,
        hold: Annotated[str | None, typer.Option(help="hold this stratum by hand")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object per stratum")] = False,
        actor: ActorOpt = os.environ.get("USER", "maintainer"),
    ) -> None:
        """Strata (source | error type | model | area): items, approval with Wilson bounds, held items, minutes."""
        from rich.console import Console
        from rich.table import Table

        from review_queue.errors import QueueError

        store = _open(db)
        try:
            if release:
                typer.echo(
                    f"released {release}: {store.release_stratum(release, actor=actor)} item(s) back in the pool"
                )
            if hold:
                typer.echo(f"held {hold}: {store.hold_stratum(hold, actor=actor)} open item(s)")
        except QueueError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from e
        rows = store.strata_report()
        if as_json:
            for r in rows:
                typer.echo(json.dumps(r, ensure_ascii=False))
            return
        t = Table("stratum", "items", "decisions", "approval", "wilson 95%", "held", "min/approved")
        for r in rows:
            t.add_row(
                r["stratum"],
                str(sum(r["items"].values())),
                str(r["decisions"]),
                _fmt(r["approval"]),
                f"{r['wilson_low']:.2f}-{r['wilson_high']:.2f}",
                f"HELD {r['held_items']}" if r["held"] else str(r["held_items"]),
                _fmt(r["minutes_per_approved"], 2),
            )
        Console(width=200).print(t)

    @audit_app.command("verify")
    def audit_verify(db: DbOpt = DEFAULT_URL) -> None:
        """Recompute the hash chain; exit 1 and list the rows if anything was edited or deleted."""
        res = _open(db).audit_verify()
        for p in res.problems:
            typer.echo(p, err=True)
        typer.echo(f"audit rows={res.rows} ok={res.ok}")
        if not res.ok:
            raise typer.Exit(1)

    @audit_app.command("export")
    def audit_export(
        out: Annotated[Path, typer.Option("--out")],
        db: DbOpt = DEFAULT_URL,
        actor: str = os.environ.get("USER", "maintainer"),
    ) -> None:
        """Write the audit log as JSONL (the export is itself audited)."""
        with out.open("w", encoding="utf-8") as f:
            n = _open(db).audit_export(f, actor=actor)
        typer.echo(f"wrote {n} audit rows to {out}")

    @user_app.command("add")
    def user_add(
        name: str,
        role: Annotated[str, typer.Option(help="reviewer | arbiter | maintainer | admin")],
        db: DbOpt = DEFAULT_URL,
    ) -> None:
        """Create a user; the token is printed once and only its hash is stored."""
        from review_queue.errors import QueueError

        try:
            token = _open(db).add_user(name, role)
        except QueueError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from e
        typer.echo(token)

    @user_app.command("revoke")
    def user_revoke(
        name: str, db: DbOpt = DEFAULT_URL, actor: ActorOpt = os.environ.get("USER", "admin")
    ) -> None:
        """Revoke a user's token at once (audited); the items they held go back to the pool."""
        from review_queue.errors import QueueError

        try:
            released = _open(db).revoke_user(name, actor=actor)
        except QueueError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from e
        typer.echo(f"revoked {name}; {released} leased item(s) returned to the pool")


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
