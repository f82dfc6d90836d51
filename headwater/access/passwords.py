"""Password hashing with scrypt (standard library): a random salt per password, parameters kept in
the hash so they can be raised later, and constant-time comparison."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from headwater.errors import PermanentError

N, R, P = 2**14, 8, 1
MIN_LENGTH = 10


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_strength(username: str, password: str) -> None:
    """A password people cannot guess from the user name or in a few tries."""
    if len(password) < MIN_LENGTH:
        raise PermanentError(
            f"passwords need at least {MIN_LENGTH} characters (this one has {len(password)})",
            hint="choose a longer one, e.g. a few words",
        )
    if username.lower() in password.lower():
        raise PermanentError("passwords may not contain the user name", hint="choose one that does not")
    if len(set(password)) < 4:
        raise PermanentError("passwords need at least 4 different characters", hint="mix more characters")


def generate_password() -> str:
    return secrets.token_urlsafe(15)
