"""Pay a 402 answer the way the real Python `x402` client does, fully offline.

Usage: sign_payment.py <private-key-hex>
stdin: {"headers": {"PAYMENT-REQUIRED": "<base64>"}, "body": <402 JSON body>}
stdout: {"name": "<payment header name>", "value": "<payment header value>"}

Driven by the sgl-pay interop test. The 402 answer is read with the library's own
`x402HTTPClientSync.get_payment_required_response` (v2 header first, then a v1 body),
signed by `register_exact_evm_client` with an eth-account local account, and encoded with
the library's `encode_payment_signature_header`. Default spend controls stay on, so the
quote must use a default (network, asset) pair and cost at most $1.
"""

import json
import sys

from eth_account import Account
from x402 import x402ClientSync
from x402.http import x402HTTPClientSync
from x402.mechanisms.evm.exact import register_exact_evm_client


def main() -> None:
    account = Account.from_key(sys.argv[1])
    answer = json.load(sys.stdin)
    headers = {name.lower(): value for name, value in answer.get("headers", {}).items()}

    client = x402ClientSync()
    register_exact_evm_client(client, account)
    http_client = x402HTTPClientSync(client)

    payment_required = http_client.get_payment_required_response(
        lambda name: headers.get(name.lower()), answer.get("body")
    )
    payload = http_client.create_payment_payload(payment_required)
    [(name, value)] = http_client.encode_payment_signature_header(payload).items()
    json.dump({"name": name, "value": value}, sys.stdout)


if __name__ == "__main__":
    main()
