"""``python -m controlplane.sandbox serve|create-customer-role`` (dev/test only)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from controlplane.providers.aws.external_id import is_valid_external_id
from controlplane.sandbox.customers import VENDOR_PRINCIPAL, create_customer_role
from controlplane.sandbox.server import DEFAULT_HOST, DEFAULT_PORT, SandboxCloud


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlplane.sandbox")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the AWS emulator (moto + sandbox layer)")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--access-log", action="store_true")
    serve.add_argument(
        "--state-file",
        type=Path,
        help="restore the AWS state from this file on start and save it there (docs/sandbox.md)",
    )
    serve.add_argument(
        "--snapshot-seconds",
        type=float,
        default=30.0,
        help="with --state-file: save this often when something changed (and always on stop)",
    )

    seed = commands.add_parser(
        "create-customer-role",
        help="create the onboarding CloudFormation stack in a sandbox customer account",
    )
    seed.add_argument("--external-id", required=True)
    seed.add_argument("--stack-name", default="lakeplane-access")
    seed.add_argument("--account-id", help="12-digit account id (default: a new random one)")
    seed.add_argument("--vendor-principal", default=VENDOR_PRINCIPAL)
    seed.add_argument("--tenant-tag", default="")
    seed.add_argument("--endpoint-url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}")

    args = parser.parse_args(argv)
    if args.command == "serve":
        logging.basicConfig(level=logging.INFO, format="aws-emulator: %(message)s")
        cloud = SandboxCloud(
            host=args.host,
            port=args.port,
            access_log=args.access_log,
            state_path=args.state_file,
            snapshot_seconds=args.snapshot_seconds,
        )
        cloud.restore()

        def ready() -> None:
            print(f"sandbox cloud on {cloud.endpoint_url} (AWS_ENDPOINT_URL)", flush=True)

        cloud.serve_until_signalled(ready)
        return 0

    if not is_valid_external_id(args.external_id):
        parser.error("--external-id must be 32 to 64 letters and digits")
    if args.account_id is not None and not (
        args.account_id.isdigit() and len(args.account_id) == 12
    ):
        parser.error("--account-id must be 12 digits")
    role = create_customer_role(
        args.endpoint_url,
        external_id=args.external_id,
        stack_name=args.stack_name,
        account_id=args.account_id,
        vendor_principal=args.vendor_principal,
        tenant_tag=args.tenant_tag,
    )
    print(role.role_arn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
