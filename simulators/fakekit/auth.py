"""Who may call a fake: static API keys (portal, WMS, carrier) or OAuth2 client credentials (ERP).

Credentials are derived from the seed, so the ``.env`` file a run writes stays valid for the
same seed and a user configures a layer once; on a shared host :func:`random_secrets` makes them
(and the webhook secret) unguessable for this process instead. Access tokens are always random.
Tokens expire after ``token_ttl_s`` of wall-clock time, as the client lives it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from simulators.clock import Clock, technical_seconds
from simulators.fakekit.problems import Problem


_salt = ""  # empty: secrets follow from the seed; see random_secrets()


def random_secrets() -> None:
    """From now on, in this process, every credential and webhook secret is random, not seeded."""
    global _salt
    _salt = secrets.token_hex(16)


def seeded(text: str) -> bytes:
    """32 bytes that follow from ``text`` (and the seed in it), or from nothing after random_secrets()."""
    return hashlib.sha256(f"returns-harness:{_salt}{text}".encode()).digest()


def derive_secret(system: str, seed: int, what: str) -> str:
    return seeded(f"{system}:{seed}:{what}").hex()[:32]


@dataclass(frozen=True)
class Credentials:
    """What an integration layer needs to call one fake system."""

    api_key: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_ttl_s: int = 3600


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = 'Bearer realm="returns-harness"' + (f', error="{error}"' if error else "")
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


class Authenticator:
    def __init__(self, system: str, seed: int, clock: Clock, credentials: Credentials) -> None:
        self.system = system
        self.clock = clock
        self.credentials = credentials
        self._tokens: dict[str, float] = {}  # token -> expiry, in clock seconds

    def issue_token(self, client_id: str, client_secret: str) -> tuple[str, int]:
        c = self.credentials
        if c.client_id is None or client_id != c.client_id or client_secret != c.client_secret:
            raise Problem(401, "invalid-client", "Unknown client_id or wrong client_secret.", title="Invalid client")
        token = f"tok_{secrets.token_hex(16)}"  # unpredictable: a bearer token is a secret, not test data
        self._tokens[token] = technical_seconds(self.clock) + c.token_ttl_s
        return token, c.token_ttl_s

    def authenticate(self, authorization: str | None) -> str:
        """The caller's principal, or a 401 problem saying what is missing or wrong."""
        if not authorization:
            raise _unauthorized(f"Missing Authorization header: send 'Bearer <{self._what()}>'.")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise _unauthorized(f"Authorization must be 'Bearer <{self._what()}>'.")
        if self.credentials.api_key is not None and value == self.credentials.api_key:
            return "api-key"
        expiry = self._tokens.get(value)
        if expiry is None:
            raise _unauthorized("Unknown access token.", "invalid_token")
        if technical_seconds(self.clock) >= expiry:
            raise _unauthorized("The access token expired; request a new one at /oauth/token.", "invalid_token")
        return self.credentials.client_id or "client"

    def expire(self, authorization: str | None) -> Problem:
        """Expire the caller's token now (the token_expiry fault) and say so as a real IdP would."""
        value = (authorization or "").partition(" ")[2]
        if value in self._tokens:
            self._tokens[value] = technical_seconds(self.clock)
        return _unauthorized("The access token expired; request a new one at /oauth/token.", "invalid_token")

    def _what(self) -> str:
        return "access token from /oauth/token" if self.credentials.client_id else "API key"

    def reset(self) -> None:
        self._tokens.clear()
