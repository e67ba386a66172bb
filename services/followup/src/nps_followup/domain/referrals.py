"""Promoters' referrals, traceable: each customer's referral code, and the link that carries it.

The code is an HMAC-SHA256 of the customer's id under a secret the company keeps
(FOLLOWUP_REFERRAL_SECRET), cut to 80 bits and written in lower-case base32 (16 characters):

- stable: the same customer gets the same code in every email, from every replica, and again
  after followup's database is rebuilt by replaying the topics, so links already sent keep
  working (a stored random code would be re-drawn by a replay, and two sweepers could draw two);
- not guessable: without the secret, knowing (or guessing) customer ids gives no code, and 80
  bits cannot be enumerated against the API;
- no PII: the code says nothing about the customer.

followup still stores each code it sends (code → customer and case), because an HMAC cannot be
read backwards: that row is how `POST /v1/referrals` finds the promoter."""

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nps_events import ReferralLink

#: A code as `referral_code` writes it; anything else cannot be one.
CODE = re.compile(r"^[a-z2-7]{16}$")

_URL = re.compile(r"^https?://[^\s<>\"'{}]*\{code\}[^\s<>\"'{}]*$")


class ReferralProgram(BaseModel):
    """`referral:` in the policy: where a referral link points. `{code}` is replaced by the
    customer's code, e.g. `https://example.com/r/{code}` or `https://example.com/?ref={code}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(max_length=1_900)

    @field_validator("url")
    @classmethod
    def _one_code(cls, value: str) -> str:
        if not _URL.match(value) or value.count("{code}") != 1:
            raise ValueError(
                "an http(s) URL with {code} once where the customer's code goes, e.g. "
                "https://example.com/r/{code}"
            )
        return value


def referral_code(customer_id: str, secret: bytes) -> str:
    """The customer's referral code: 16 characters of a–z and 2–7 (80 bits of the HMAC)."""
    digest = hmac.new(secret, customer_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


@dataclass(frozen=True, slots=True)
class ReferralCodes:
    """The policy's referral program with the secret its codes are made with."""

    program: ReferralProgram
    secret: bytes

    def link_for(self, customer_id: str) -> ReferralLink:
        code = referral_code(customer_id, self.secret)
        return ReferralLink(code=code, url=self.program.url.replace("{code}", code))


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral recorded against a promoter's code: `referral_id` is the caller's own id for
    it (a retry with the same id is the same referral), `reference` the caller's reference
    of the referred party (no PII needed)."""

    referral_id: str
    code: str
    customer_id: str
    case_id: uuid.UUID
    referred_at: datetime
    reference: str | None
    recorded_at: datetime

    def same_as(self, code: str, referred_at: datetime, reference: str | None) -> bool:
        """Whether a retry says what this referral says (else the id is used twice)."""
        return (self.code, self.referred_at, self.reference) == (code, referred_at, reference)
