"""What checking a bearer token costs a request, with the identity provider's keys cached.

    .venv/bin/python bench/auth.py [--tokens 2000] [--rounds 5]

The dev identity provider is served over HTTP (as in the dev stack); the verifier fetches its
key set once, then each distinct token (RS256, 2048-bit key, the default of Keycloak, Okta,
Entra ID and Auth0) is verified the first time it is seen (header, key lookup, signature,
`iss`, `aud`, `exp`/`nbf`, roles) and answered from the verifier's cache after that, as for a
client that sends its token with every request. `Access.authenticate` adds what a route pays
on top (the `Authorization` header parsed; a 401 problem built for a bad token). Times are
per call, median of the rounds.
"""

import argparse
import asyncio
import contextlib
import statistics
import time

import httpx

from nps_kit.access import Access
from nps_kit.auth import AuthSettings, TokenError, TokenVerifier
from nps_kit.devstack import free_port, scratch_dir
from nps_kit.devstack.idp import DEV_USERS, ServedIdentityProvider
from nps_kit.http import Problem


async def _measure(issuer: str, batches: list[list[str]]) -> dict[str, float]:
    """Per round: a batch of tokens never seen (verified), the same again (answered from the
    verifier's cache), through `Access.authenticate` as a route calls it, and tampered."""
    async with httpx.AsyncClient(timeout=5) as http:
        verifier = TokenVerifier(AuthSettings(issuer=issuer), http=http)
        await verifier.start()
        access = Access(verifier, issuer=issuer)
        results: dict[str, list[float]] = {"first": [], "again": [], "route": [], "refused": []}
        for tokens in batches:
            headers = [f"Bearer {t}" for t in tokens]
            tampered = [f"Bearer {t[:-4]}AAAA" for t in tokens]
            for name in ("first", "again"):
                started = time.perf_counter()
                for token in tokens:
                    await verifier.verify(token)
                results[name].append((time.perf_counter() - started) / len(tokens))
            started = time.perf_counter()
            for header in headers:
                await access.authenticate(header)
            results["route"].append((time.perf_counter() - started) / len(tokens))
            started = time.perf_counter()
            for header in tampered:
                with contextlib.suppress(Problem, TokenError):
                    await access.authenticate(header)
            results["refused"].append((time.perf_counter() - started) / len(tokens))
    return {name: statistics.median(values) * 1e6 for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = scratch_dir("npsloop-bench-auth-")
    idp = ServedIdentityProvider(key_file=tmp / "key.pem", port=free_port())
    idp.start()
    try:
        people = [u.email for u in DEV_USERS]
        batches = [
            [idp.provider.person_token(people[i % len(people)]) for i in range(args.tokens)]
            for _ in range(args.rounds)
        ]
        micros = asyncio.run(_measure(idp.issuer, batches))
    finally:
        idp.stop()
    print(f"{args.tokens} distinct RS256 tokens, {args.rounds} rounds, median per call:")
    print(f"  a token seen first (signature checked)         {micros['first']:6.1f} µs")
    print(f"  the same token again (verifier's cache)        {micros['again']:6.1f} µs")
    print(f"  Access.authenticate, as a route (cache)        {micros['route']:6.1f} µs")
    print(f"  a tampered token refused (401 problem)         {micros['refused']:6.1f} µs")


if __name__ == "__main__":
    main()
