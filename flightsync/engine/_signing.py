"""Standard Webhooks signatures (https://www.standardwebhooks.com), both directions.

A secret is ``whsec_<base64 key>``; a signature is ``v1,<base64 HMAC-SHA256>`` of
``"<webhook-id>.<webhook-timestamp>.<body>"``; ``webhook-signature`` may carry several
space-separated signatures so a sender can rotate its secret without downtime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from flightsync.errors import ConfigError, WebhookSignatureError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def parse_secret(text: str, *, where: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ConfigError naming ``where`` otherwise.

    The message never contains the secret itself.
    """
    body = text.strip()
    if not body.startswith(SECRET_PREFIX):
        raise ConfigError(f"{where}: expected a secret of the form whsec_<base64 key>")
    try:
        key = base64.b64decode(body[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: the part after whsec_ is not valid base64") from None
    if not key:
        raise ConfigError(f"{where}: the secret's key is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of the message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for an outgoing message."""
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(key, msg_id, timestamp, body)}


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive; compare them lower-cased."""
    return {name.strip().lower(): value.strip() for name, value in headers.items()}


def verify(key: bytes, headers: Mapping[str, str], body: bytes, *, now: float,
           tolerance_seconds: float) -> str:
    """Check a received message; return its ``webhook-id``.

    Raises WebhookSignatureError naming what is wrong: a missing header, a timestamp that is
    not a number or too far from ``now`` (either way: replays and clock skew), or no
    signature that matches.
    """
    found = lower_keys(headers)
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not found.get(h)]
    if missing:
        raise WebhookSignatureError(f"missing header {', '.join(missing)}")
    msg_id = found[ID_HEADER]
    try:
        timestamp = int(found[TIMESTAMP_HEADER])
    except ValueError:
        raise WebhookSignatureError(
            f"{TIMESTAMP_HEADER} {found[TIMESTAMP_HEADER][:20]!r} is not Unix seconds") from None
    skew = now - timestamp
    if abs(skew) > tolerance_seconds:
        direction = "old" if skew > 0 else "in the future"
        raise WebhookSignatureError(
            f"{TIMESTAMP_HEADER} is {int(abs(skew))} s {direction}, outside the "
            f"{int(tolerance_seconds)} s tolerance", event_id=msg_id)
    expected = sign(key, msg_id, timestamp, body).split(",", 1)[1].encode("ascii")
    for candidate in found[SIGNATURE_HEADER].split():
        version, _, value = candidate.partition(",")
        # Every candidate is compared in constant time; other versions are skipped, not errors.
        if version == "v1" and hmac.compare_digest(value.encode("ascii", "replace"), expected):
            return msg_id
    raise WebhookSignatureError("no v1 signature in webhook-signature matches the body",
                                event_id=msg_id)
