"""The ``bloodbank`` command: serve the local stack, print tokens, seed, export the schema, and
register hospitals' integration app clients (``hospital-client``, local stack or AWS)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    from bloodbank.local import oauth, seed, stack
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
        # The pool domain's /oauth2/token (client credentials), which moto lacks: local server only.
        issuer = oauth.ClientCredentialsIssuer(info.aws_endpoint, info.region, info.user_pool_id)
        app = oauth.with_token_endpoint(create_app(container), issuer)
        workers = LocalWorkers(
            container,
            provisioning.client("sqs", info.aws_endpoint, info.region),
            info.campaign_queue_url,
            info.uploads_queue_url,
            info.photos_queue_url,
        )
        workers.start()  # the campaign queue's consumer and the schedules, as Lambda's triggers on AWS
        roles = "|".join([*(u.role for u in seed.DEMO_USERS), "hospital-client"])
        console.print(
            f"[bold]GraphQL + GraphiQL[/]  {info.api_url}\n"
            f"Subscriptions       {ws}://{base}/graphql (graphql-transport-ws, graphql-ws)\n"
            f"AppSync real-time   {ws}://{base}/graphql/realtime (Amplify JS)\n"
            f"Health              {http}://{base}/health\n"
            f"OAuth2 token URL    {info.token_url} (client credentials; the demo hospital client's"
            f" id and secret are in {stack.hospital_client_path(state)})\n"
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
    from bloodbank.local import oauth, seed, stack

    stack.use_local_credentials()
    state = _state_dir(args)
    info = stack.read_info(state)
    if args.role == "hospital-client":  # the demo hospital integration, by the client-credentials grant
        try:
            facts = json.loads(stack.hospital_client_path(state).read_text())
            issuer = oauth.ClientCredentialsIssuer(info.aws_endpoint, info.region, info.user_pool_id)
            issued = issuer.issue(facts["client_id"], facts["client_secret"], facts.get("scope"))
        except Exception as exc:
            raise StackError(
                f"Could not get a token for the demo hospital client ({type(exc).__name__});"
                " is the stack running? (`bloodbank serve` writes hospital-client.json)"
            ) from None
        print(issued.access_token)
        return 0
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
    stack.ensure_demo_hospital_client(info, state)
    print(f"Demo data loaded into {info.table_name} at {info.dynamodb_endpoint}; users: {', '.join(subs)}")
    return 0


# --- hospital integrations: app clients for the client-credentials grant ----------------------------
@dataclass(frozen=True)
class _Pool:
    """Where hospital clients are managed: the local stack's moto pool and DynamoDB Local, or AWS."""

    region: str
    user_pool_id: str
    aws_endpoint: str | None
    dynamodb_endpoint: str | None
    table_name: str
    scope: str
    token_url: str | None


def _pool(args: argparse.Namespace) -> _Pool:
    """``--from-env``: the names the Lambda functions read (``bloodbank.settings``), otherwise the
    running local stack (its state folder)."""
    from bloodbank.adapters import provisioning
    from bloodbank.local import stack
    from bloodbank.settings import DEFAULT_MACHINE_SCOPE
    from bloodbank.storage.models import TableBinding, bind

    if args.from_env:
        env = os.environ
        pool_id = env.get("BLOODBANK_USER_POOL_ID", "").strip()
        if not pool_id:
            raise StackError(
                "BLOODBANK_USER_POOL_ID is not set (--from-env reads the Lambda functions' settings)"
            )
        scope = env.get("BLOODBANK_MACHINE_SCOPE", DEFAULT_MACHINE_SCOPE).strip()
        if not scope:
            raise StackError("BLOODBANK_MACHINE_SCOPE is empty: the API accepts no hospital clients")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        aws = env.get("BLOODBANK_AWS_ENDPOINT") or None
        target = _Pool(
            region,
            pool_id,
            aws,
            env.get("BLOODBANK_DYNAMODB_ENDPOINT") or None,
            env.get("BLOODBANK_TABLE", "bloodbank"),
            scope,
            None,
        )
        bind(TableBinding(target.table_name, target.region, target.dynamodb_endpoint))
        return target
    stack.use_local_credentials()
    info = stack.read_info(_state_dir(args))
    scope = provisioning.ensure_resource_server(info.aws_endpoint, info.region, info.user_pool_id)
    bind(TableBinding(info.table_name, info.region, info.dynamodb_endpoint))
    return _Pool(
        info.region,
        info.user_pool_id,
        info.aws_endpoint,
        info.dynamodb_endpoint,
        info.table_name,
        scope,
        info.token_url,
    )


def _failed(what: str, exc: Exception) -> StackError:
    """An AWS failure in a line an operator can act on: the error code, never a request's content."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
    return StackError(f"{what} failed ({code}); check the credentials, the region and the settings")


CLIENT_NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@- ")


def _hospital_client_create(args: argparse.Namespace) -> int:
    from bloodbank.adapters import provisioning
    from bloodbank.storage.directory import DynamoDirectory

    if not 5 <= args.token_minutes <= 1440:
        raise StackError("--token-minutes must be 5-1440 (Cognito's range for access tokens)")
    name = f"hospital-{args.hospital}-{args.name}"
    if len(name) > 128 or not set(name) <= CLIENT_NAME_CHARACTERS:
        raise StackError("--name: letters, digits, spaces and _+=,.@- only (app client names, up to 128)")
    pool = _pool(args)
    directory = DynamoDirectory()
    try:
        hospitals = {h.id: h for h in directory.hospitals()}
    except Exception as exc:
        raise _failed("Reading the hospitals", exc) from None
    hospital = hospitals.get(args.hospital)
    if hospital is None:
        known = ", ".join(sorted(hospitals)) or "none"
        raise StackError(f"Unknown hospital {args.hospital!r}; nothing was created. Hospitals: {known}")
    try:
        made = provisioning.create_machine_client(
            pool.aws_endpoint, pool.region, pool.user_pool_id, name, pool.scope, args.token_minutes
        )
    except Exception as exc:
        raise _failed("Creating the app client", exc) from None
    try:
        directory.put_membership(made.client_id, hospital.id)
    except Exception as exc:
        try:  # no app client without its hospital: undo, so nothing is left half made
            provisioning.delete_app_client(pool.aws_endpoint, pool.region, pool.user_pool_id, made.client_id)
        except Exception:
            raise StackError(
                f"Registering app client {made.client_id} to {hospital.id} failed; deleting it failed"
                " too: delete it in the Cognito console"
            ) from None
        raise _failed("Registering the app client to its hospital (it was deleted again)", exc) from None
    token_url = pool.token_url
    if token_url is None:
        try:
            token_url = provisioning.token_url_of_pool(pool.aws_endpoint, pool.region, pool.user_pool_id)
        except Exception:
            token_url = None
    facts = {
        "client_id": made.client_id,
        "client_secret": made.secret,
        "token_url": token_url or "",
        "scope": pool.scope,
        "hospital_id": hospital.id,
        "name": made.name,
        "token_minutes": args.token_minutes,
    }
    if args.json:
        print(json.dumps(facts))
        return 0
    print(
        f"Registered app client {made.client_id} ({made.name}) to {hospital.name} ({hospital.id}).\n"
        "Give these to the hospital's integration. The secret is shown this once only: keep it in a\n"
        "secret store (revoke the client and make a new one if it is lost or leaked).\n\n"
        f"CLIENT_ID={made.client_id}\n"
        f"CLIENT_SECRET={made.secret}\n"
        f"TOKEN_URL={token_url or '(the user pool has no domain yet: see infra/README.md)'}\n\n"
        f"Grant client_credentials, scope {pool.scope}; access tokens last {args.token_minutes} minutes."
    )
    return 0


def _registered_clients(pool: _Pool, hospital: str | None) -> list[tuple[str, str, str]]:
    from bloodbank.adapters import provisioning
    from bloodbank.storage.directory import DynamoDirectory

    directory = DynamoDirectory()
    try:
        clients = provisioning.list_app_clients(pool.aws_endpoint, pool.region, pool.user_pool_id)
        # The membership says which app clients act for a hospital (the API's own test of a client).
        rows = [(c.client_id, directory.hospital_of(c.client_id), c.name) for c in clients]
    except Exception as exc:
        raise _failed("Listing the app clients", exc) from None
    return sorted(
        ((cid, hid, name) for cid, hid, name in rows if hid and (hospital is None or hid == hospital)),
        key=lambda row: (row[1], row[2], row[0]),
    )


def _hospital_client_list(args: argparse.Namespace) -> int:
    rows = _registered_clients(_pool(args), args.hospital)
    if args.json:
        print(json.dumps([{"client_id": c, "hospital_id": h, "name": n} for c, h, n in rows]))
        return 0
    if not rows:
        print("No app client is registered to a hospital.")
    for client_id, hospital_id, name in rows:
        print(f"{client_id}  {hospital_id}  {name}")
    return 0


def _hospital_client_revoke(args: argparse.Namespace) -> int:
    from bloodbank.adapters import provisioning
    from bloodbank.storage.directory import DynamoDirectory

    pool = _pool(args)
    directory = DynamoDirectory()
    try:
        hospital_id = directory.hospital_of(args.client_id)
    except Exception as exc:
        raise _failed("Reading the app client's hospital", exc) from None
    if hospital_id is None:
        raise StackError(
            f"App client {args.client_id} is not registered to a hospital; nothing was revoked"
            " (`bloodbank hospital-client list` shows the hospital clients)"
        )
    try:
        # The membership first: from this moment the API refuses the client's tokens, even unexpired.
        directory.delete_membership(args.client_id)
        deleted = provisioning.delete_app_client(
            pool.aws_endpoint, pool.region, pool.user_pool_id, args.client_id
        )
    except Exception as exc:
        raise _failed("Revoking the app client", exc) from None
    gone = "deleted" if deleted else "was already gone"
    print(
        f"Revoked app client {args.client_id} of {hospital_id}: the API refuses its tokens from now on,"
        f" and the app client {gone}."
    )
    return 0


def _hospital_client_parser(commands: Any) -> None:
    group = commands.add_parser(
        "hospital-client",
        help="register, list or revoke a hospital integration's app client (client credentials)",
        description="Hospital integrations sign in without a person, with Cognito's OAuth"
        " client-credentials grant: one confidential app client per integration, registered to its"
        " hospital. Against the running local stack by default; with --from-env against the user pool"
        " and table that BLOODBANK_USER_POOL_ID, BLOODBANK_TABLE and AWS_REGION name (the Lambda"
        " functions' settings), with the AWS credentials of the environment.",
    )
    actions = group.add_subparsers(dest="action", required=True)

    def common(action: argparse.ArgumentParser) -> None:
        action.add_argument("--data-dir", help="the local stack's state folder (default .local)")
        action.add_argument(
            "--from-env",
            action="store_true",
            help="use the environment's settings (AWS), not the local stack",
        )
        action.add_argument("--json", action="store_true", help="print JSON")

    create = actions.add_parser("create", help="create an app client for a hospital; prints its secret once")
    create.add_argument("--hospital", required=True, help="the hospital's id, e.g. hosp-st-mary")
    create.add_argument("--name", default="integration", help="what the client is for (default integration)")
    create.add_argument("--token-minutes", type=int, default=60, help="access-token lifetime, 5-1440 (60)")
    common(create)
    create.set_defaults(run=_hospital_client_create)

    listing = actions.add_parser("list", help="the app clients registered to hospitals")
    listing.add_argument("--hospital", help="only this hospital's")
    common(listing)
    listing.set_defaults(run=_hospital_client_list)

    revoke = actions.add_parser("revoke", help="refuse the client's tokens and delete the app client")
    revoke.add_argument("--client-id", required=True)
    common(revoke)
    revoke.set_defaults(run=_hospital_client_revoke)


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
    token.add_argument(
        "--as",
        dest="role",
        required=True,
        choices=["admin", "staff", "donor", "hospital", "hospital-client"],
        help="a demo user's role, or hospital-client: the demo hospital integration (client credentials)",
    )
    token.add_argument("--id-token", action="store_true", help="print the ID token instead")
    token.add_argument("--data-dir")
    token.set_defaults(run=_token)

    seed = commands.add_parser("seed", help="(re)load demo data into the running local stack; idempotent")
    seed.add_argument("--data-dir")
    seed.set_defaults(run=_seed)

    _hospital_client_parser(commands)

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
