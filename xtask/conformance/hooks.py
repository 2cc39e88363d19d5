"""Schemathesis hooks for `cargo xtask conformance`.

Loaded through `SCHEMATHESIS_HOOKS` by the `schemathesis run` that xtask starts
against the fake AgentIdP (`cargo run --example fake_server --features testing`).
xtask passes the fake's address and bootstrap credentials in the environment:

    AGENTIDP_API_URL             the API root, e.g. http://127.0.0.1:41234/api/v1
    AGENTIDP_CLIENT_ID           the bootstrap agent's client id (its agent id)
    AGENTIDP_CLIENT_SECRET       its secret: a throwaway of the in-memory fake

What the hooks do, so that the run cannot break its own authentication:

- Every request but `POST /token` gets a bearer token fresh from the
  client-credentials grant, made just for it. A token that some generated
  case revokes (`POST /token/revoke` with a token Schemathesis captured from an
  earlier response) is therefore never used again. `POST /token` gets no
  bearer header: it authenticates with the form fields or HTTP Basic.
- Calls that could disable the bootstrap agent or its credential (PATCH or
  DELETE of the agent, rotating or revoking its credentials) are pointed at
  an agent id that does not exist instead, and so answer a documented 404
  (or 400, when the body is invalid).
  Schemathesis learns the bootstrap agent's id from `GET /agents` responses
  and would otherwise decommission it, after which no token can be had.

And one that lets the success path of `POST /token` be checked at all: the
spec's own example request names a made-up client (`EXAMPLE_CLIENT_ID`), which
no server knows. Wherever a generated `POST /token` body carries that example
client id and secret, they are swapped for the live bootstrap credentials, so
the documented example (and the cases derived from it) reach a 200 and its
response is validated, headers included; the tokens it returns are then also
fed by Schemathesis to introspection and revocation. Likewise the example
`token` of `POST /token/introspect` and `POST /token/revoke` (a JWT the fake did
not sign) is swapped for a live token issued for that request, so that an
active introspection answer is validated too.

One more makes the agent operations reach past 404: Hypothesis draws the
same few simple emails again and again (`0@A.com`), so nearly every
`POST /agents` would answer 409 and few agents would exist for the calls that
need one. Every second repeat of an email in a positive test case gets a
`+N` tag in its local part, keeping it valid; the other repeats still go as
drawn and answer the documented 409.

All other requests go out as generated, and nothing here relaxes a check:
responses are validated exactly as the spec says.

`python hooks.py` (with the same environment) asks the fake for one token
and prints its scope: the check xtask makes before starting Schemathesis.
"""

from __future__ import annotations

import collections
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

import schemathesis

API_URL = os.environ["AGENTIDP_API_URL"].rstrip("/")
CLIENT_ID = os.environ["AGENTIDP_CLIENT_ID"]
CLIENT_SECRET = os.environ["AGENTIDP_CLIENT_SECRET"]

# Operations that could leave the bootstrap agent unable to get tokens when
# aimed at it.
GUARDED_OPERATIONS = frozenset(
    {"update_agent", "decommission_agent", "rotate_credential", "revoke_credential"}
)

# A well-formed agent id that the fake never hands out (version-4 layout, all
# zero random bits): guarded calls aimed at the bootstrap agent go here.
ABSENT_AGENT_ID = "00000000-0000-4000-8000-000000000000"

# The client id and secret of the spec's `POST /token` example.
EXAMPLE_CLIENT_ID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
EXAMPLE_CLIENT_SECRET = "sk_live_0123456789abcdef0123456789abcdef"

# The `token` of the spec's introspection and revocation examples.
EXAMPLE_TOKEN = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhMWIyIn0.c2ln"


def token_response() -> dict:
    """The fake's answer to a client-credentials grant for the bootstrap agent."""
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    ).encode()
    request = urllib.request.Request(
        f"{API_URL}/token",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")
        raise RuntimeError(
            f"the fake refused the bootstrap credentials: {error.code} {detail}"
        ) from error
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise RuntimeError(f"POST /token answered without an access_token: {body}")
    return body


def issue_token() -> str:
    """A new access token for the bootstrap agent, with all its scopes."""
    return token_response()["access_token"]


# How many times each email was sent to `POST /agents` in positive test cases.
EMAILS_SEEN: collections.Counter = collections.Counter()

# A dot-atom local part, which stays valid with a `+N` tag appended.
PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*")


def operation_id(case) -> str | None:
    return case.operation.definition.raw.get("operationId")


# `refresh_interval=None`: no caching, `get` runs for every request.
@schemathesis.auth(refresh_interval=None).skip_for(operation_id="issue_token")
class FreshBearerToken:
    """A new bearer token for each request."""

    def get(self, case, context):
        return issue_token()

    def set(self, case, data, context):
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(context, case, **kwargs):
    operation = operation_id(case)
    if operation == "issue_token":
        use_live_credentials(case)
    elif operation in ("introspect_token", "revoke_token"):
        use_live_token(case)
    elif operation == "register_agent":
        vary_repeated_email(case)
    elif operation in GUARDED_OPERATIONS:
        params = case.path_parameters
        if params and str(params.get("agentId", "")).lower() == CLIENT_ID.lower():
            params["agentId"] = ABSENT_AGENT_ID


def use_live_credentials(case) -> None:
    """Swaps the spec example's client id and secret for the live ones."""
    body = case.body
    if not isinstance(body, dict):
        return
    if body.get("client_id") == EXAMPLE_CLIENT_ID:
        body["client_id"] = CLIENT_ID
    if body.get("client_secret") == EXAMPLE_CLIENT_SECRET:
        body["client_secret"] = CLIENT_SECRET


def use_live_token(case) -> None:
    """Swaps the spec example's `token` for a live one."""
    body = case.body
    if isinstance(body, dict) and body.get("token") == EXAMPLE_TOKEN:
        body["token"] = issue_token()


def vary_repeated_email(case) -> None:
    """Tags every second repeat of an email, in positive test cases only."""
    meta = case.meta
    body = case.body
    if meta is None or not meta.generation.mode.is_positive or not isinstance(body, dict):
        return
    email = body.get("email")
    if not isinstance(email, str) or email.count("@") != 1:
        return
    local, domain = email.split("@")
    if not PLAIN_LOCAL_PART.fullmatch(local):
        return
    seen = EMAILS_SEEN[email]
    EMAILS_SEEN[email] += 1
    if seen % 2 == 1:
        body["email"] = f"{local}+{seen}@{domain}"


if __name__ == "__main__":
    # `python hooks.py`: the check xtask runs before Schemathesis starts.
    granted = token_response()
    print(
        f"bearer token issued to {CLIENT_ID}: scope \"{granted.get('scope')}\", "
        f"expires in {granted.get('expires_in')} s"
    )

