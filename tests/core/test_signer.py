"""The one token signer: links and session cookies (itsdangerous), and every derived key."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import BadSignature
from sqlmodel import Session

from models.access import GrantKind, Principal, check_link_issued, withdraw_links
from models.errors import Forbidden
from models.keys import (
    channel_key,
    link_serializer,
    seal_key,
    session_serializer,
    signing_keys,
)
from models.links import LinkClaim, sign, verify
from models.seal import Sealer
from web.session import (
    SESSION_LIFETIME,
    anonymous,
    csrf_matches,
    decode,
    encode,
    signed_in,
    with_officer,
)

SECRET = "test-secret"
NOW = datetime(2026, 12, 7, 2, 0, 0, 123456, tzinfo=UTC)
NOT_VALID = "this link is not valid: ask the coordinator for a new one"
EXPIRED = "this link has expired: ask the coordinator for a new one"


def step_link(step_id: int | None = 4821, days: int = 7) -> LinkClaim:
    """A link as a message carries it: issued now, expiring after `days`."""
    return LinkClaim("polres-ppa", step_id, NOW + timedelta(days=days), issued=NOW)


def agency_session() -> str:
    """The cookie of a focal point signed in through a step link."""
    principal = Principal(kind=GrantKind.agency, agency="polres-ppa", step_ids=frozenset({4821}))
    return encode(SECRET, signed_in(NOW, principal, link_issued=1_796_608_800_123_456))


def flipped(token: str, index: int) -> str:
    """The token with one character changed (to another base64url character)."""
    return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]


# Links


@pytest.mark.parametrize("step_id", [4821, None], ids=["step", "inbox"])
def test_a_link_gives_back_its_claim_to_the_second_and_the_microsecond(step_id):
    claim = verify(SECRET, sign(SECRET, step_link(step_id)), NOW)
    assert claim.agency == "polres-ppa" and claim.step_id == step_id
    assert claim.expires == (NOW + timedelta(days=7)).replace(microsecond=0)
    assert claim.issued == NOW  # exact: the withdraw-links cutoff compares it to the µs


def test_a_link_without_an_issued_moment_stays_undated():
    claim = verify(SECRET, sign(SECRET, LinkClaim("dinsos", 7, NOW + timedelta(days=1))), NOW)
    assert claim.issued is None  # an undated link is refused once its agency withdraws links


def test_a_link_expires_at_its_moment():
    token = sign(SECRET, step_link(days=7))
    expiry = (NOW + timedelta(days=7)).replace(microsecond=0)
    assert verify(SECRET, token, expiry - timedelta(seconds=1)).step_id == 4821
    for later in (expiry, expiry + timedelta(days=30)):
        with pytest.raises(Forbidden) as refused:
            verify(SECRET, token, later)
        assert str(refused.value) == EXPIRED


def test_a_tampered_foreign_or_malformed_link_is_refused_without_saying_why():
    token = sign(SECRET, step_link())
    body, signature = token.split(".")
    # Another agency's name in the payload, the original signature kept.
    other = base64.urlsafe_b64encode(
        json.dumps(["dinsos", 4821, 1_900_000_000], separators=(",", ":")).encode()
    )
    bad = [
        flipped(token, 5),  # payload
        flipped(token, len(token) - 2),  # signature
        f"{other.decode().rstrip('=')}.{signature}",
        body,  # no signature
        token[:-10],
        f"{token}.{signature}",
        sign("another-secret", step_link()),  # another installation's link
        "",
        "...",
        "not-a-token",
        "ü" * 40 + "." + signature,
    ]
    for token_text in bad:
        with pytest.raises(Forbidden) as refused:
            verify(SECRET, token_text, NOW)
        assert str(refused.value) == NOT_VALID, token_text


def test_a_link_of_the_hand_written_format_is_refused_like_any_bad_link():
    # Links sent before the move to itsdangerous: base64(JSON).base64(HMAC-SHA256).
    key = hashlib.sha256(f"rujukan|links|{SECRET}".encode()).digest()
    body = json.dumps({"a": "polres-ppa", "s": 4821, "e": 1_900_000_000}).encode()
    old = ".".join(
        base64.urlsafe_b64encode(part).decode().rstrip("=")
        for part in (body, hmac.new(key, body, hashlib.sha256).digest())
    )
    with pytest.raises(Forbidden, match="this link is not valid"):
        verify(SECRET, old, NOW)


def test_a_link_carries_ids_and_moments_only():
    payload = link_serializer(SECRET).loads(sign(SECRET, step_link()))
    assert payload == [
        "polres-ppa",
        4821,
        int((NOW + timedelta(days=7)).timestamp()),
        1_796_608_800_123_456,
    ]


def test_a_link_stays_short_enough_for_an_sms():
    # 130 characters with the hand-written format; an SMS has 160 for the whole message.
    longest = LinkClaim("gugus-tugas", 9_999_999, NOW + timedelta(days=366), issued=NOW)
    assert len(sign(SECRET, longest)) <= 112
    assert len(sign(SECRET, step_link())) <= 108


def test_the_issued_moment_survives_the_withdraw_cutoff_to_the_microsecond(engine, catalog):
    with Session(engine) as db:
        withdraw_links(db, agency="polres-ppa", by="coordinator-1", now=NOW, catalog=catalog)
        db.commit()
        before = LinkClaim("polres-ppa", 1, NOW + timedelta(days=7), issued=NOW)
        after = LinkClaim(
            "polres-ppa", 1, NOW + timedelta(days=7), issued=NOW + timedelta(microseconds=1)
        )
        with pytest.raises(Forbidden, match="this link was withdrawn"):
            check_link_issued(db, "polres-ppa", verify(SECRET, sign(SECRET, before), NOW).issued)
        check_link_issued(db, "polres-ppa", verify(SECRET, sign(SECRET, after), NOW).issued)


# Sessions


def test_a_session_cookie_gives_back_every_field():
    principal = Principal(
        kind=GrantKind.agency, agency="polres-ppa", step_ids=frozenset({4821, 4822})
    )
    session = with_officer(signed_in(NOW, principal, link_issued=42), "Officer on duty")
    back = decode(SECRET, encode(SECRET, session), NOW)
    assert back == session.__class__(**{**session.__dict__, "expires": back.expires})
    assert back.expires == session.expires.replace(microsecond=0)
    assert back.principal() == session.principal()


def test_a_session_lasts_its_lifetime_and_no_longer():
    cookie = encode(SECRET, anonymous(NOW))
    assert decode(SECRET, cookie, NOW + SESSION_LIFETIME - timedelta(seconds=1)) is not None
    assert decode(SECRET, cookie, NOW + SESSION_LIFETIME) is None
    principal = Principal(kind=GrantKind.agency, agency="dinsos")
    short = signed_in(NOW, principal, until=NOW + timedelta(hours=1))
    assert short.expires == NOW + timedelta(hours=1)  # a link expiring sooner ends it sooner
    long = signed_in(NOW, principal, until=NOW + timedelta(days=30))
    assert long.expires == NOW + SESSION_LIFETIME


def test_a_tampered_foreign_or_missing_session_cookie_is_no_session():
    cookie = agency_session()
    assert decode(SECRET, cookie, NOW) is not None
    bad = [
        None,
        "",
        flipped(cookie, 5),
        flipped(cookie, len(cookie) - 2),
        cookie.split(".")[0],
        encode("another-secret", anonymous(NOW)),
        "garbage",
    ]
    for value in bad:
        assert decode(SECRET, value, NOW) is None, value


def test_a_link_is_never_a_session_and_a_session_never_a_link():
    link = sign(SECRET, step_link())
    cookie = agency_session()
    assert decode(SECRET, link, NOW) is None
    with pytest.raises(Forbidden) as refused:
        verify(SECRET, cookie, NOW)
    assert str(refused.value) == NOT_VALID
    # Same key, other salt: each purpose refuses the other's signature, not only its payload.
    with pytest.raises(BadSignature, match="does not match"):
        session_serializer(SECRET).loads(link)
    with pytest.raises(BadSignature, match="does not match"):
        link_serializer(SECRET).loads(cookie)


def test_csrf_matches_only_its_own_session_token():
    session = anonymous(NOW)
    assert csrf_matches(session, session.csrf)
    for submitted in (None, "", "forged", session.csrf[:-1], anonymous(NOW).csrf):
        assert not csrf_matches(session, submitted)
    assert not csrf_matches(None, session.csrf)
    principal = Principal(kind=GrantKind.agency, agency="dinsos")
    assert signed_in(NOW, principal, previous=session).csrf != session.csrf  # no fixation


# Keys


def test_the_sealing_and_channel_keys_never_change():
    # Sealed records and the channel names in the outbox depend on these exact bytes.
    assert seal_key(SECRET) == b"7H586yryoidy8GODlyqFyALR2wMwi8ZYDAn5ZZKFUZE="
    assert channel_key(SECRET).hex() == (
        "d9df6f4488042d537f118fb617a32ad094a41d25b69944239e6bab5154c15d97"
    )
    assert Sealer(SECRET).open(Sealer(SECRET).seal({"n": 1})) == {"n": 1}


def test_every_derived_key_is_distinct():
    keys = [base64.urlsafe_b64decode(seal_key(SECRET)), channel_key(SECRET), *signing_keys(SECRET)]
    assert len(set(keys)) == len(keys) == 3
    assert SECRET.encode() not in keys


def test_an_older_signing_key_in_the_list_keeps_its_tokens_valid():
    # Rotation later means prepending the old secret's key: its tokens pass, new ones use the new.
    old_link = sign("old-secret", step_link())
    rotated = link_serializer("new-secret")
    rotated.secret_keys = signing_keys("old-secret") + rotated.secret_keys
    assert rotated.loads(old_link)[0] == "polres-ppa"
    fresh = rotated.dumps(["dinsos", None, 1_900_000_000])
    assert verify("new-secret", fresh, NOW).agency == "dinsos"
    with pytest.raises(Forbidden):
        verify("old-secret", fresh, NOW)
