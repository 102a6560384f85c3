"""Standard Webhooks signing and verification (flightsync.engine._signing), checked against
an HMAC computed here from the convention's definition, not from the code under test."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from flightsync.engine import parse_secret, sign, signature_headers, verify
from flightsync.errors import ConfigError, WebhookSignatureError

KEY = b"flightsync-test-key-0123456789ab"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1_772_000_000
BODY = b'{"type": "flight.updated"}'


def reference_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(signature: str, *, msg_id: str = "msg_1", timestamp: int = NOW) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature}


def test_parse_secret_decodes_the_whsec_key() -> None:
    """A whsec_ secret yields the base64-decoded key."""
    assert parse_secret(SECRET, where="test") == KEY


@pytest.mark.parametrize("text", ["plain-secret", "whsec_", "whsec_not*base64"])
def test_a_malformed_secret_is_a_config_error_without_the_secret(text: str) -> None:
    """A secret that is not whsec_<base64> is a ConfigError naming where it came from and not
    repeating the value."""
    with pytest.raises(ConfigError) as caught:
        parse_secret(text, where="environment variable X")
    assert "environment variable X" in caught.value.message
    assert text not in caught.value.message or text == "whsec_"


def test_sign_matches_the_convention() -> None:
    """sign() is v1,<base64 HMAC-SHA256 of id.timestamp.body>; the headers carry all three."""
    expected = reference_signature(KEY, "msg_1", NOW, BODY)
    assert sign(KEY, "msg_1", NOW, BODY) == expected
    assert signature_headers(KEY, "msg_1", NOW, BODY) == headers_for(expected)


def test_a_valid_signature_returns_the_event_id() -> None:
    """A correct signature within the tolerance verifies and yields webhook-id; header names
    are case-insensitive."""
    headers = {k.upper(): v for k, v in headers_for(
        reference_signature(KEY, "msg_7", NOW, BODY), msg_id="msg_7").items()}
    assert verify(KEY, headers, BODY, now=NOW + 10, tolerance_seconds=300) == "msg_7"


def test_a_rotated_secret_list_verifies_when_any_signature_matches() -> None:
    """Several space-separated signatures (secret rotation): one match is enough."""
    old = reference_signature(b"the-previous-key", "msg_1", NOW, BODY)
    new = reference_signature(KEY, "msg_1", NOW, BODY)
    assert verify(KEY, headers_for(f"{old} {new}"), BODY, now=NOW,
                  tolerance_seconds=300) == "msg_1"


@pytest.mark.parametrize(("headers", "problem"), [
    (headers_for(reference_signature(b"another-key", "msg_1", NOW, BODY)), "no v1 signature"),
    (headers_for(reference_signature(KEY, "msg_1", NOW, b"{}")), "no v1 signature"),
    (headers_for("v2," + reference_signature(KEY, "msg_1", NOW, BODY)[3:]), "no v1 signature"),
    (headers_for(reference_signature(KEY, "msg_1", NOW - 301, BODY), timestamp=NOW - 301),
     "301 s old"),
    (headers_for(reference_signature(KEY, "msg_1", NOW + 400, BODY), timestamp=NOW + 400),
     "in the future"),
    ({"webhook-id": "msg_1", "webhook-timestamp": str(NOW)}, "missing header webhook-signature"),
    ({**headers_for("v1,x"), "webhook-timestamp": "yesterday"}, "not Unix seconds"),
])
def test_bad_signatures_are_rejected_naming_the_problem(headers: dict[str, str],
                                                        problem: str) -> None:
    """Wrong key, tampered body, unknown version, expired or future timestamp, missing or
    malformed headers: WebhookSignatureError whose message names the problem."""
    with pytest.raises(WebhookSignatureError) as caught:
        verify(KEY, headers, BODY, now=NOW, tolerance_seconds=300)
    assert problem in caught.value.message
