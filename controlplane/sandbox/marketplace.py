"""AWS Marketplace metering in the emulator: what moto's ``meteringmarketplace`` lacks.

moto answers ``BatchMeterUsage`` but keeps nothing (so it never reports a duplicate and
cannot show what was metered), has no way to subscribe a customer (every record comes back
``CustomerNotSubscribed``) and no ``ResolveCustomer``. The layer adds, as AWS behaves:

* ``POST /_lakeplane/marketplace/customers`` ``{token, customer, product, account}`` registers a
  sign-up: ``ResolveCustomer`` with that token answers the customer, and the customer is
  subscribed to the product in moto's backend;
* after moto answers ``BatchMeterUsage``, every ``Success`` is remembered by (product, customer,
  dimension, timestamp): sending the same record again is idempotent (the first
  MeteringRecordId comes back), the same key with another quantity is ``DuplicateRecord``;
* ``POST /_lakeplane/marketplace/unprocessed`` ``{count}`` makes the next ``count`` records come
  back in ``UnprocessedRecords`` (AWS's partial failure), and
  ``GET /_lakeplane/marketplace/records`` lists what was metered.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.meteringmarketplace.models import meteringmarketplace_backends

Response = tuple[int, list[tuple[str, str]], bytes]
JSON = [("Content-Type", "application/x-amz-json-1.1")]


class Marketplace:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registrations: dict[str, dict[str, str]] = {}
        self._records: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._unprocessed = 0

    def reset(self) -> None:
        with self._lock:
            self._registrations.clear()
            self._records.clear()
            self._unprocessed = 0

    def register(self, payload: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
        fields = ("token", "customer", "product")
        if not all(isinstance(payload.get(k), str) and payload[k] for k in fields):
            raise ValueError(f"give {', '.join(fields)} as strings")
        vendor = str(payload.get("vendor_account") or DEFAULT_ACCOUNT_ID)
        with self._lock:
            self._registrations[payload["token"]] = {
                "customer": payload["customer"],
                "product": payload["product"],
                "account": str(payload.get("account", "")),
            }
        backend = meteringmarketplace_backends[vendor][payload.get("region", region)]
        subscribed = backend.customers_by_product[payload["product"]]
        if payload["customer"] not in subscribed:
            subscribed.append(payload["customer"])
        return {"registered": payload["token"]}

    def set_unprocessed(self, count: Any) -> dict[str, Any]:
        if not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative integer")
        with self._lock:
            self._unprocessed = count
        return {"unprocessed": count}

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records.values()]

    def resolve_customer(self, body: bytes) -> Response:
        token = json.loads(body or b"{}").get("RegistrationToken", "")
        with self._lock:
            found = self._registrations.get(token)
        if found is None:
            error = {"__type": "InvalidTokenException", "message": "Registration token is invalid"}
            return 400, JSON, json.dumps(error).encode()
        answer = {
            "CustomerIdentifier": found["customer"],
            "ProductCode": found["product"],
            "CustomerAWSAccountId": found["account"],
        }
        return 200, JSON, json.dumps(answer).encode()

    def after_batch(self, body: bytes, payload: bytes) -> bytes:
        product = json.loads(body or b"{}").get("ProductCode", "")
        answer = json.loads(payload)
        results, unprocessed = [], list(answer.get("UnprocessedRecords", []))
        with self._lock:
            for result in answer.get("Results", []):
                usage = result["UsageRecord"]
                if self._unprocessed > 0:
                    self._unprocessed -= 1
                    unprocessed.append(usage)
                    continue
                key = (
                    product,
                    usage["CustomerIdentifier"],
                    usage["Dimension"],
                    str(usage["Timestamp"]),
                )
                if result.get("Status") == "Success":
                    seen = self._records.get(key)
                    if seen is None:
                        self._records[key] = {
                            "product": product,
                            "customer": usage["CustomerIdentifier"],
                            "dimension": usage["Dimension"],
                            "timestamp": usage["Timestamp"],
                            "quantity": usage.get("Quantity", 0),
                            "metering_record_id": result["MeteringRecordId"],
                        }
                    elif seen["quantity"] == usage.get("Quantity", 0):
                        result["MeteringRecordId"] = seen["metering_record_id"]
                    else:
                        result["Status"] = "DuplicateRecord"
                results.append(result)
        answer["Results"], answer["UnprocessedRecords"] = results, unprocessed
        return json.dumps(answer).encode()
