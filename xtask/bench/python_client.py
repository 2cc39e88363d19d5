"""The Python side of `cargo xtask bench` (throughput per core).

A minimal AgentIdP client shaped like the upstream Python SDK: one
`httpx.AsyncClient` on `<origin>/api/v1`, a client-credentials token fetched
with a form POST to `/token` and cached (behind an `asyncio.Lock`) until
shortly before it expires, `Authorization: Bearer <token>` on every call,
errors raised from the status, and the JSON decoded into an `Agent` record.

It makes `--requests` authenticated `GET /agents/{id}` calls, `--concurrency`
at a time on one asyncio loop (one core), after a warm-up of a tenth as many,
and prints one JSON line: requests, wall seconds, CPU seconds (user + system
of this process) and the rates. Every loop is bounded by the request count and
by `--max-seconds`.

Run by benches/throughput.rs with the project's venv (.venv/, from
xtask/requirements.txt); it talks only to the loopback server it is given.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time

import httpx

REFRESH_BUFFER_S = 60.0


@dataclasses.dataclass(frozen=True)
class Agent:
    """An agent record, as the upstream SDK returns it."""

    agent_id: str
    email: str
    agent_type: str
    version: str
    capabilities: list[str]
    owner: str
    deployment_env: str
    status: str
    created_at: str
    updated_at: str

    @classmethod
    def from_dict(cls, data: dict) -> "Agent":
        return cls(
            agent_id=data["agentId"],
            email=data["email"],
            agent_type=data["agentType"],
            version=data["version"],
            capabilities=list(data["capabilities"]),
            owner=data["owner"],
            deployment_env=data["deploymentEnv"],
            status=data["status"],
            created_at=data["createdAt"],
            updated_at=data["updatedAt"],
        )


class AgentIdPError(Exception):
    """An error answer from the AgentIdP."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


class TokenManager:
    """Client-credentials tokens, cached until REFRESH_BUFFER_S before expiry."""

    def __init__(self, http: httpx.AsyncClient, client_id: str, client_secret: str, scopes: str) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._scopes = scopes
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at - REFRESH_BUFFER_S

    async def get_token(self) -> str:
        if self._fresh():
            return self._token  # type: ignore[return-value]
        async with self._lock:
            if not self._fresh():
                response = await self._http.post(
                    "/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self._client_id,
                        "client_secret": self._client_secret,
                        "scope": self._scopes,
                    },
                )
                if response.status_code >= 400:
                    raise AgentIdPError(response.status_code, response.text)
                body = response.json()
                self._token = body["access_token"]
                self._expires_at = time.monotonic() + float(body["expires_in"])
        return self._token  # type: ignore[return-value]


class AgentIdPClient:
    """The slice of the upstream SDK this benchmark needs."""

    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/api/v1", timeout=30.0)
        self._tokens = TokenManager(
            self._http, client_id, client_secret, "agents:read agents:write tokens:read audit:read"
        )

    async def get_agent(self, agent_id: str) -> Agent:
        token = await self._tokens.get_token()
        response = await self._http.get(
            f"/agents/{agent_id}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        if response.status_code >= 400:
            raise AgentIdPError(response.status_code, response.text)
        return Agent.from_dict(response.json())

    async def aclose(self) -> None:
        await self._http.aclose()


async def run(client: AgentIdPClient, agent_id: str, total: int, concurrency: int, deadline: float) -> int:
    """Makes up to `total` calls, `concurrency` at a time; returns the calls made."""
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < total and time.monotonic() < deadline:
            done += 1
            await client.get_agent(agent_id)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--agent-id", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()

    client = AgentIdPClient(args.base_url, args.client_id, args.client_secret)
    try:
        deadline = time.monotonic() + args.max_seconds
        await run(client, args.agent_id, max(args.requests // 10, 1), args.concurrency, deadline)
        cpu, wall = time.process_time(), time.perf_counter()
        deadline = time.monotonic() + args.max_seconds
        calls = await run(client, args.agent_id, args.requests, args.concurrency, deadline)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await client.aclose()
    print(
        json.dumps(
            {
                "requests": calls,
                "wall_s": wall,
                "cpu_s": cpu,
                "req_per_s_wall": calls / wall,
                "req_per_cpu_s": calls / cpu,
                "httpx": httpx.__version__,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
