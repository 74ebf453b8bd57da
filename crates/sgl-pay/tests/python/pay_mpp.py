"""Pay an MPP `evm/charge` route with the real Python client (`pympp[evm]` 0.16.0), offline.

Usage: pay_mpp.py
stdin: {"url", "private_key", "currency", "chain_id", "decimals", "name", "version"}
stdout: {"status", "body", "receipt": {...} | null, "credentials", "payer",
         "replay_status", "replay_problem", "replay_challenge"}

Driven by the sgl-pay interop test. `mpp.client.Mpp` fetches the URL, reads the 402's
`WWW-Authenticate: Payment` challenge, signs an EIP-3009 authorization with an eth-account
local account through `mpp.methods.evm.client.charge`, and retries with
`Authorization: Payment ...`; the receipt is read with `Receipt.from_payment_receipt`. Then
the same credential is sent once more with a plain httpx client, which must be refused.
"""

import asyncio
import json
import sys

import httpx
from eth_account import Account
from mpp import Receipt
from mpp.client import Mpp
from mpp.methods.evm import client as evm


async def main() -> None:
    config = json.load(sys.stdin)
    account = Account.from_key(config["private_key"])
    method = evm.charge(
        currency=config["currency"],
        account=account,
        chain_id=config["chain_id"],
        decimals=config["decimals"],
        authorization={"name": config["name"], "version": config["version"]},
    )

    credentials: list[str] = []
    async with Mpp(methods=[method]) as mpp:
        mpp.on_credential_created(
            lambda event: credentials.append(event["credential"].to_authorization())
        )
        response = await mpp.fetch(config["url"])

    receipt = None
    if "payment-receipt" in response.headers:
        parsed = Receipt.from_payment_receipt(response.headers["payment-receipt"])
        receipt = {
            "status": parsed.status,
            "method": parsed.method,
            "reference": parsed.reference,
            "timestamp": parsed.timestamp.isoformat(),
        }

    replay_status = replay_problem = replay_challenge = None
    if credentials:
        async with httpx.AsyncClient(trust_env=False) as plain:
            replay = await plain.get(config["url"], headers={"Authorization": credentials[-1]})
        replay_status = replay.status_code
        replay_problem = replay.json()
        replay_challenge = replay.headers.get("www-authenticate")

    json.dump(
        {
            "status": response.status_code,
            "body": response.text,
            "receipt": receipt,
            "credentials": len(credentials),
            "payer": account.address,
            "replay_status": replay_status,
            "replay_problem": replay_problem,
            "replay_challenge": replay_challenge,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    asyncio.run(main())
