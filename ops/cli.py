"""`./ops/dev`: run tourbook locally. One function per command; the work is in the other modules."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from common.config import BaseConfig
from ops import browser, demo, envfile, paths, provision, servers, services, standins, supervisor
from ops.errors import OpsError
from ops.services import Service

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def say(text: str) -> None:
    print(f"ops: {text}", flush=True)


# -- infrastructure --


def infra_servers(configs: dict[Service, BaseConfig], *,
                  test: bool = False) -> list[servers.Server]:
    """The servers to reach: each service's database server (and the test one), AMQP, Redis
    (as the services read them, names of the original included)."""
    postgres = {f"{service.name.upper()}_DATABASE_URL": url for service, config in configs.items()
                if (url := services.database_url(config))}
    if test or not postgres:
        postgres = {"TEST_POSTGRES_URL": test_postgres_url(), **postgres}
    shared = next(iter(configs.values()), None)
    if shared is not None:
        return servers.wanted(postgres, shared.amqp_url, shared.redis_url)
    return servers.wanted(postgres, os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL,
                          os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)


def test_postgres_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def load_configs(selected: list[Service]) -> dict[Service, BaseConfig]:
    return {service: services.config(service) for service in selected}


def ensure_infra(configs: dict[Service, BaseConfig], *, test: bool = False) -> None:
    asyncio.run(servers.ensure(infra_servers(configs, test=test), say))


# -- commands --


def cmd_up(args: argparse.Namespace) -> int:
    with supervisor.UpPidfile():
        selected = services.selected()
        configs = load_configs(selected)
        ensure_infra(configs)
        if not selected:
            say("no service packages in this checkout yet: infrastructure is up, nothing to start")
            return 0
        _refuse_busy_ports(configs)
        notes = asyncio.run(_provision(configs, seed=not args.no_seed))
        urls = {service.name: services.base_url(config) for service, config in configs.items()}
        commands = {service.name: supervisor.python_module(service.name) for service in selected}
        environ = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Where each service listens, for its peers (CATALOG_URL...), unless the operator says.
        for name, url in urls.items():
            environ.setdefault(f"{name.upper()}_URL", url)
        if "web" in urls and "gateway" in urls:
            _pages_through_gateway(environ, urls["gateway"])
        for stand_in in _stand_ins(configs, urls):
            commands[stand_in.name] = supervisor.python_module(stand_in.module)
            environ.update(stand_in.environ)
            notes.append(standins.describe(stand_in))
        commands["ops"] = supervisor.python_module(
            "ops.readiness", "--timeout", str(args.ready_timeout),
            *(f"{name}={url}" for name, url in urls.items()))
        environ[supervisor.READY_NOTES_VAR] = "\n".join(notes)
        if environ.get("LOG_FORMAT", "auto") in ("", "auto") and sys.stdout.isatty():
            # The services write to honcho's pipe, but their lines end up on this terminal.
            environ["LOG_FORMAT"] = "console"
        say(f"starting {', '.join(s.name for s in selected)}; Ctrl-C stops them all")
        code = supervisor.run(commands, environ)
    if code in (130, 143):
        say("stopped every service")
        return 0
    say(f"a service exited (code {code}), so every other one was stopped")
    return code or 1


def _pages_through_gateway(environ: dict[str, str], gateway: str) -> None:
    """web calls the API through the gateway with each visitor's address, which the gateway
    believes from a trusted proxy, and its reads for a page are not limited twice: web runs on
    this machine."""
    environ.setdefault("WEB_API_URL", gateway)
    for variable in ("GATEWAY_TRUSTED_PROXIES", "GATEWAY_PAGE_CLIENTS"):
        if not environ.get(variable):
            environ[variable] = "127.0.0.1/32,::1/128"


def _stand_ins(configs: dict[Service, BaseConfig],
               urls: dict[str, str]) -> list[standins.StandIn]:
    by_name = {service.name: config for service, config in configs.items()}
    found = []
    payments = by_name.get("payments")
    if payments is not None:
        stripe = standins.stripe(payments, urls.get("gateway", "http://127.0.0.1:8080"))
        if stripe is None:
            say("payments talks to Stripe itself (STRIPE_* keys set): forward its webhooks with "
                "`stripe listen --forward-to localhost:8080/webhooks/stripe`")
        found.append(stripe)
    notify = by_name.get("notify")
    if notify is not None:
        sink = standins.smtp(notify)
        if sink is None:
            say("notify sends e-mail through the SMTP server of SMTP_HOST: no local sink")
        found.append(sink)
    return [stand_in for stand_in in found if stand_in is not None]


def _refuse_busy_ports(configs: dict[Service, BaseConfig]) -> None:
    busy = [f"{service.name} ({url})" for service, config in configs.items()
            if servers.url_port_open(url := services.base_url(config))]
    if busy:
        raise OpsError(f"port already in use for {', '.join(busy)}: another ./ops/dev up or an old "
                       "service process is running (./ops/dev down, or find it with "
                       "`ss -ltnp`)")


async def _provision(configs: dict[Service, BaseConfig], *, seed: bool) -> list[str]:
    """Keys, databases, migrations, demo data, admin; the notes to repeat under the URL table."""
    notes = []
    auth = next((config for service, config in configs.items() if service.name == "auth"), None)
    if auth is not None:
        provision.ensure_keys(auth, say)
    for service, config in configs.items():
        await provision.migrate_service(service, config, say)
    for service, config in configs.items():
        await provision.declare_queue(service, config, say)
    if seed:
        for service, config in configs.items():
            await provision.seed_service(service, config, say)
    if auth is not None:
        try:
            credentials = provision.admin_credentials()
        except OpsError as exc:
            say(f"no admin created: {exc}")
        else:
            await provision.ensure_admin(auth, credentials, say)
            notes.append(provision.login_hint(credentials))
            say(notes[-1])
    return notes


def cmd_down(args: argparse.Namespace) -> int:
    pid = supervisor.stop_up()
    say(f"stopped ./ops/dev up (pid {pid}) and its services" if pid else
        "no ./ops/dev up is running")
    if args.keep_infra:
        say("--keep-infra: left PostgreSQL, Redis and RabbitMQ running")
    else:
        asyncio.run(servers.stop_started(say))
    return 0


def cmd_infra(args: argparse.Namespace) -> int:
    ensure_infra(load_configs(services.selected()), test=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    configs = load_configs(services.selected())
    checks = asyncio.run(servers.check_all(infra_servers(configs, test=True)))
    for result in checks:
        say(result.problem or f"{result.server} ok")
    pid = supervisor.running_up()
    say(f"./ops/dev up is running (pid {pid})" if pid else "./ops/dev up is not running")
    say("services in this checkout: " + (", ".join(s.name for s in configs) or "none yet"))
    return 1 if any(result.problem for result in checks) else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    configs = load_configs(services.pick(services.selected(), args.services))
    _servers_up(configs, broker=any(services.queue(service) for service in configs))

    async def migrate_all() -> None:
        for service, config in configs.items():
            await provision.migrate_service(service, config, say)
        for service, config in configs.items():
            await provision.declare_queue(service, config, say)

    asyncio.run(migrate_all())
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    configs = load_configs(services.pick(services.selected(), args.services))
    _servers_up(configs)

    async def seed_all() -> None:
        for service, config in configs.items():
            await provision.migrate_service(service, config, say)
            await provision.seed_service(service, config, say)

    asyncio.run(seed_all())
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    credentials = provision.admin_credentials(args.email, args.password)
    configs = load_configs(services.pick(services.selected(), ["auth"]))
    _servers_up(configs)
    auth, config = next(iter(configs.items()))

    async def create() -> None:
        await provision.migrate_service(auth, config, say)
        await provision.ensure_admin(config, credentials, say)

    asyncio.run(create())
    say(provision.login_hint(credentials))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    configs = load_configs(services.pick(services.selected(), ["auth"]))
    provision.ensure_keys(next(iter(configs.values())), say)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    gateway = args.gateway
    if gateway is None:
        [(_, config)] = load_configs([s for s in services.REGISTRY if s.name == "gateway"]).items()
        gateway = services.base_url(config)
    demo.run(gateway, args.query, say)
    say("the journey worked end to end")
    return 0


def _servers_up(configs: dict[Service, BaseConfig], *, broker: bool = False) -> None:
    """PostgreSQL reachable (and RabbitMQ, with `broker`), started if need be."""
    kinds = {"postgres", "rabbitmq"} if broker else {"postgres"}
    wanted = [s for s in infra_servers(configs) if s.kind in kinds]
    asyncio.run(servers.ensure(wanted, say))


def cmd_test(pytest_args: list[str]) -> int:
    """Replace this process with pytest, pointed at the servers `ensure` made reachable."""
    os.environ.setdefault("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    os.environ.setdefault("AMQP_URL", DEFAULT_AMQP_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    ensure_infra({}, test=True)
    browser.ensure(say)
    argv = [sys.executable, "-m", "pytest", *_from_cwd(pytest_args)]
    say("running pytest " + " ".join(argv[3:]))
    sys.stdout.flush()
    os.chdir(paths.ROOT)
    os.execv(sys.executable, argv)  # noqa: S606 - a fixed interpreter and argv, no shell
    return 1  # not reached


def _from_cwd(args: list[str]) -> list[str]:
    """Paths given relative to the caller's directory, made absolute (pytest runs from the root)."""
    cwd = Path.cwd()
    if cwd == paths.ROOT:
        return args
    result = []
    for arg in args:
        head, sep, tail = arg.partition("::")
        if not arg.startswith("-") and head and (cwd / head).exists():
            result.append(str((cwd / head).resolve()) + sep + tail)
        else:
            result.append(arg)
    return result


# -- parsing --


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="./ops/dev",
        description="Run tourbook on this machine. Reads .env (the real environment wins).",
        epilog="Start with `./ops/dev up`; `./ops/dev test` runs the whole suite.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start infrastructure, migrate, seed, create the admin, run "
                        "every service (Ctrl-C stops it all)")
    up.add_argument("--ready-timeout", type=float, default=60.0, metavar="SECONDS",
                    help="how long to wait for every /health/ready (default: 60)")
    up.add_argument("--no-seed", action="store_true", help="skip the demo data")
    up.set_defaults(run=cmd_up)

    down = sub.add_parser("down", help="stop a running `up`, and the servers ops itself started")
    down.add_argument("--keep-infra", action="store_true",
                      help="stop only `up`; leave PostgreSQL, Redis and RabbitMQ running")
    down.set_defaults(run=cmd_down)

    sub.add_parser("test", help="ensure the infrastructure, then run pytest (all arguments go to "
                   "pytest; none: the whole suite)", add_help=False)
    sub.add_parser("infra", help="make PostgreSQL, Redis and RabbitMQ reachable, starting them "
                   "if needed").set_defaults(run=cmd_infra)
    sub.add_parser("status", help="what is reachable and what is running (starts nothing)"
                   ).set_defaults(run=cmd_status)

    migrate = sub.add_parser("migrate", help="create the databases, apply migrations and declare "
                                         "the services' queues")
    migrate.add_argument("services", nargs="*", metavar="SERVICE", help="default: all")
    migrate.set_defaults(run=cmd_migrate)

    seed = sub.add_parser("seed", help="migrate, then load the demo data (idempotent)")
    seed.add_argument("services", nargs="*", metavar="SERVICE", help="default: all")
    seed.set_defaults(run=cmd_seed)

    admin = sub.add_parser("create-admin", help="create (or promote) the admin user")
    admin.add_argument("--email", help="default: ADMIN_EMAIL, else admin@tourbook.example outside "
                       "production")
    admin.add_argument("--password", help="default: ADMIN_PASSWORD, else the development default "
                       "outside production")
    admin.set_defaults(run=cmd_create_admin)

    sub.add_parser("keys", help="generate the development JWT signing keys once (.keys/)"
                   ).set_defaults(run=cmd_keys)

    demo = sub.add_parser("demo", help="against a running `up`: register, log in, search, book, "
                          "pay with a test card and watch the booking confirmed, step by step")
    demo.add_argument("--gateway", help="the gateway's URL (default: from its settings)")
    demo.add_argument("--query", default="", help="what to search tours for (default: any)")
    demo.set_defaults(run=cmd_demo)
    return top


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    envfile.load(paths.ROOT / ".env")
    # Until honcho takes over, SIGTERM unwinds like Ctrl-C, so the pidfile is cleaned up.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if argv[:1] == ["test"]:
            return cmd_test(argv[1:])
        args = parser().parse_args(argv)
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except OpsError as exc:
        print(f"ops: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("ops: interrupted", file=sys.stderr, flush=True)
        return 130
