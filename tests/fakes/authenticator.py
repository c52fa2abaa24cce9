"""A software WebAuthn authenticator: real P-256 keys, real attestation and assertion data.

It answers registration and authentication options the way a browser plus platform
authenticator would, so the `webauthn` package verifies its output exactly as in production.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    def __init__(self, origin: str):
        self.origin = origin
        self.credentials: dict[bytes, dict] = {}

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict) -> dict:
        """navigator.credentials.create(): a new resident credential with 'none' attestation."""
        key = ec.generate_private_key(ec.SECP256R1())
        credential_id = os.urandom(32)
        rp_id = options["rp"]["id"]
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([0x45]) + struct.pack(">I", 0)
                     + bytes(16) + struct.pack(">H", len(credential_id)) + credential_id + cose)
        self.credentials[credential_id] = {"key": key, "rp_id": rp_id, "user_handle": unb64url(options["user"]["id"]),
                                           "count": 0}
        client_data = self._client_data("webauthn.create", options["challenge"])
        return {"id": b64url(credential_id), "rawId": b64url(credential_id), "type": "public-key",
                "response": {"clientDataJSON": b64url(client_data),
                             "attestationObject": b64url(cbor2.dumps({"fmt": "none", "attStmt": {},
                                                                      "authData": auth_data})),
                             "transports": ["internal"]},
                "clientExtensionResults": {}, "authenticatorAttachment": "platform"}

    def get(self, options: dict, credential_id: bytes | None = None) -> dict:
        """navigator.credentials.get(): sign the challenge with a stored credential for this relying party."""
        rp_id = options.get("rpId")
        candidates = [cid for cid, c in self.credentials.items() if c["rp_id"] == rp_id]
        credential_id = credential_id or candidates[0]
        stored = self.credentials[credential_id]
        stored["count"] += 1
        auth_data = (hashlib.sha256(stored["rp_id"].encode()).digest() + bytes([0x05])
                     + struct.pack(">I", stored["count"]))
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = stored["key"].sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": b64url(credential_id), "rawId": b64url(credential_id), "type": "public-key",
                "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                             "signature": b64url(signature), "userHandle": b64url(stored["user_handle"])},
                "clientExtensionResults": {}, "authenticatorAttachment": "platform"}
