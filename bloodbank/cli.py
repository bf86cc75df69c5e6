"""The ``bloodbank`` command: serve the local stack, print tokens, seed, export the schema."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bloodbank.local.engines import StackError


def _state_dir(args: argparse.Namespace) -> Path:
    """``--data-dir``, or the default state folder (BLOODBANK_HOME, else .local in the checkout)."""
    from bloodbank.local import engines

    return Path(args.data_dir) if args.data_dir else engines.state_dir()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from rich.console import Console

    from bloodbank.adapters import provisioning
    from bloodbank.bootstrap import build_container
    from bloodbank.local import seed, stack
    from bloodbank.local.workers import LocalWorkers
    from bloodbank.server import create_app

    console = Console()
    state = _state_dir(args)
    cert, key = stack.tls_certificate(state, [args.host]) if args.tls else (None, None)  # Amplify: wss only
    http, ws = ("https", "wss") if cert else ("http", "ws")
    base = f"{args.host}:{args.port}"
    trust = (
        f"TLS certificate     {cert} (self-signed: trust it in the browser, NODE_EXTRA_CA_CERTS={cert}"
        f" for Node, curl --cacert {cert})\n"
        if cert
        else ""
    )
    console.print("Starting DynamoDB Local and the moto server, provisioning and seeding...")
    ports = (args.port, args.dynamodb_port, args.moto_port)
    with stack.start(args.host, *ports, state, tls=cert is not None) as (info, settings, _):
        container = build_container(settings, appeals_in_process=True)
        app = create_app(container)
        workers = LocalWorkers(
            container,
            provisioning.client("sqs", info.aws_endpoint, info.region),
            info.campaign_queue_url,
            info.uploads_queue_url,
            info.photos_queue_url,
        )
        workers.start()  # the campaign queue's consumer and the schedules, as Lambda's triggers on AWS
        roles = "|".join(u.role for u in seed.DEMO_USERS)
        console.print(
            f"[bold]GraphQL + GraphiQL[/]  {info.api_url}\n"
            f"Subscriptions       {ws}://{base}/graphql (graphql-transport-ws, graphql-ws)\n"
            f"AppSync real-time   {ws}://{base}/graphql/realtime (Amplify JS)\n"
            f"Health              {http}://{base}/health\n"
            f"{trust}"
            f"DynamoDB Local      {info.dynamodb_endpoint} (data in {state / 'dynamodb'})\n"
            f"moto server         {info.aws_endpoint} (Cognito user pool {info.user_pool_id})\n"
            f"Demo users          {', '.join(u.email for u in seed.DEMO_USERS)}\n"
            f"                    password {seed.DEMO_PASSWORD}\n\n"
            f"Get a token:  TOKEN=$(.venv/bin/bloodbank token --as {roles})\n"
            f"Query:        curl -s {f'--cacert {cert} ' if cert else ''}{info.api_url} "
            '-H "Authorization: $TOKEN" '
            "-H 'content-type: application/json' "
            '-d \'{"query":"{ listDonors(limit: 5) { items { id bloodGroup } nextToken } }"}\'\n'
            "Ctrl-C stops everything.",
            soft_wrap=True,
            highlight=False,
        )
        try:
            uvicorn.run(
                app,
                host=args.host,
                port=args.port,
                log_level="warning",
                lifespan="off",
                ssl_certfile=cert,
                ssl_keyfile=key,
            )
        finally:
            workers.stop()
        console.print("Stopping DynamoDB Local and the moto server...")
    return 0


def _token(args: argparse.Namespace) -> int:
    from bloodbank.adapters import provisioning
    from bloodbank.local import seed, stack

    stack.use_local_credentials()
    info = stack.read_info(_state_dir(args))
    user = next(u for u in seed.DEMO_USERS if u.role == args.role)
    try:
        tokens = provisioning.sign_in(
            info.aws_endpoint, info.region, info.pool, user.email, seed.DEMO_PASSWORD
        )
    except Exception as exc:
        raise StackError(
            f"Could not sign in to the local stack ({type(exc).__name__}); is it running?"
        ) from None
    print(tokens["IdToken" if args.id_token else "AccessToken"])
    return 0


def _seed(args: argparse.Namespace) -> int:
    from bloodbank.local import stack

    stack.use_local_credentials()
    state = _state_dir(args)
    info = stack.read_info(state)
    subs = stack.provision_and_seed(info, stack.page_token_secret(state))
    print(f"Demo data loaded into {info.table_name} at {info.dynamodb_endpoint}; users: {', '.join(subs)}")
    return 0


def _export_schema(args: argparse.Namespace) -> int:
    from schema import schema

    target = Path(args.output)
    text = str(schema).rstrip() + "\n"
    if args.check:
        current = target.read_text() if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run `bloodbank export-schema` and commit it", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="bloodbank", description="The blood service API and its local stack.")
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the whole local stack with demo data (Ctrl-C stops it)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--dynamodb-port", type=int, default=8001)
    serve.add_argument("--moto-port", type=int, default=8002)
    serve.add_argument("--data-dir", help="where local data is kept (default .local in the checkout)")
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve https and wss (Amplify JS needs wss) with a self-signed certificate for loopback,"
        " made once in the state folder",
    )
    serve.set_defaults(run=_serve)

    token = commands.add_parser("token", help="print an access token of a demo user (local stack only)")
    token.add_argument("--as", dest="role", required=True, choices=["admin", "staff", "donor", "hospital"])
    token.add_argument("--id-token", action="store_true", help="print the ID token instead")
    token.add_argument("--data-dir")
    token.set_defaults(run=_token)

    seed = commands.add_parser("seed", help="(re)load demo data into the running local stack; idempotent")
    seed.add_argument("--data-dir")
    seed.set_defaults(run=_seed)

    export = commands.add_parser("export-schema", help="write schema/schema.graphql")
    export.add_argument("--output", default=str(Path("schema") / "schema.graphql"))
    export.add_argument("--check", action="store_true", help="fail if the file differs from the code")
    export.set_defaults(run=_export_schema)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except StackError as problem:
        print(f"bloodbank: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
