"""Pay a chat on a grid that runs on a local chain, with the stock Python `x402` client.

Run by the Rust test `chain` with SGL_E2E_BASE_URL (the grid, no /v1), SGL_E2E_MODEL and
SGL_E2E_PAYER_KEY (the key of the payer `sgl-grid up --chain` funded with test USDC on the
chain). Asserts that the 402 asks for the chain's USDC on eip155:31337, pays one completion with
`wrapRequestsWithPayment` (its spend controls opted in to that token), and prints one JSON line: the payer, the quote, the settlement's
transaction hash from PAYMENT-RESPONSE, and the completion's id.
"""

import base64
import json
import os

import requests
from eth_account import Account
from x402 import x402ClientSync
from x402.http.clients.requests import wrapRequestsWithPayment
from x402.mechanisms.evm.exact import register_exact_evm_client


def decode(header: str) -> dict:
    return json.loads(base64.b64decode(header))


def main() -> None:
    base = os.environ["SGL_E2E_BASE_URL"]
    account = Account.from_key(os.environ["SGL_E2E_PAYER_KEY"])
    url = f"{base}/v1/chat/completions"
    body = {
        "model": os.environ["SGL_E2E_MODEL"],
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 4,
    }
    unpaid = requests.post(url, json=body, timeout=60)
    assert unpaid.status_code == 402, (unpaid.status_code, unpaid.text)
    required = decode(unpaid.headers["PAYMENT-REQUIRED"])
    requirement = required["accepts"][0]
    assert requirement["network"] == "eip155:31337", requirement
    assert requirement["extra"] == {"name": "USD Coin", "version": "2"}, requirement

    client = x402ClientSync()
    register_exact_evm_client(client, account)
    # The local chain's USDC is not one of the client's default assets: the payer opts in to
    # it, capped at $1 a payment, as the client's spend controls ask.
    allowed = {"network": "eip155:31337", "asset": requirement["asset"], "max_amount_per_payment": "1000000"}
    client.set_spend_controls({"allowed_assets": [allowed]})
    session = wrapRequestsWithPayment(requests.Session(), client)
    paid = session.post(url, json=body, timeout=120)
    assert paid.status_code == 200, (paid.status_code, paid.text)
    settled = decode(paid.headers["PAYMENT-RESPONSE"])
    assert settled["success"] is True, settled
    assert settled["payer"].lower() == account.address.lower(), settled
    print(
        json.dumps(
            {
                "payer": account.address.lower(),
                "asset": requirement["asset"].lower(),
                "pay_to": requirement["payTo"].lower(),
                "quote_units": int(requirement["amount"]),
                "transaction": settled["transaction"],
                "completion_id": paid.json()["id"],
            }
        )
    )


if __name__ == "__main__":
    main()
