"""Optional bearer-token authentication (SIGNALS_API_TOKEN).

With a token set, every route but the health probes needs `Authorization: Bearer <token>`: the API, and
also /metrics and the schema (a Prometheus scrape config sends the same header with `authorization:
{credentials: ...}`). Probes stay open so that load balancers and orchestrators need no secret. The
comparison is constant-time over SHA-256 digests, so neither the token's bytes nor its length leak
through timing. The token is never logged, nor echoed in an answer.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

OPEN_PATHS = frozenset({"/livez", "/healthz", "/readyz"})
REALM = b'Bearer realm="session-signals"'

Refusal = tuple[int, dict[str, str], list[tuple[bytes, bytes]]]
"""status, JSON body, extra headers"""


class BearerToken:
    def __init__(self, token: str):
        if not token or token != token.strip():
            raise ValueError("SIGNALS_API_TOKEN must be non-empty, without surrounding spaces")
        self._digest = hashlib.sha256(token.encode()).digest()

    def __repr__(self) -> str:
        return "BearerToken(***)"

    def refusal(self, path: str, headers: Mapping[bytes, bytes]) -> Refusal | None:
        """None when the request may pass; else the 401 to answer (RFC 6750: a missing token gets the
        challenge alone, a wrong one `error="invalid_token"`)."""
        if path in OPEN_PATHS:
            return None
        given = headers.get(b"authorization")
        if given is None:
            return 401, {"error": "authorization: a bearer token is required"}, [(b"www-authenticate", REALM)]
        scheme, _, credentials = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(
                hashlib.sha256(credentials.strip()).digest(), self._digest):
            return 401, {"error": "authorization: invalid bearer token"}, [
                (b"www-authenticate", REALM + b', error="invalid_token"')]
        return None
