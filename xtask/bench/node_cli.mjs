// The upstream Node CLI's shape, for the `cli` bench (BENCHMARKS.md row 10):
// `sentryagent agents list` as the Node CLI does it, with nothing but Node's
// own `fetch`: read ~/.sentryagent/config.json, get a token with the
// client-credentials grant (it keeps none between runs), list the agents,
// print them as JSON. No package to install: Node 18 or later.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

let config;
try {
  config = JSON.parse(readFileSync(join(homedir(), ".sentryagent", "config.json"), "utf8"));
} catch {
  console.error("Not configured. Run `sentryagent configure` first.");
  process.exit(1);
}
const api = `${config.apiUrl.replace(/\/$/, "")}/api/v1`;

const tokenResponse = await fetch(`${api}/token`, {
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({
    grant_type: "client_credentials",
    client_id: config.clientId,
    client_secret: config.clientSecret,
  }),
});
if (!tokenResponse.ok) {
  console.error(`token request failed: ${tokenResponse.status}`);
  process.exit(1);
}
const { access_token: token } = await tokenResponse.json();

const agentsResponse = await fetch(`${api}/agents`, {
  headers: { authorization: `Bearer ${token}` },
});
if (!agentsResponse.ok) {
  console.error(`listing failed: ${agentsResponse.status}`);
  process.exit(1);
}
const page = await agentsResponse.json();
console.log(JSON.stringify(page.data, null, 2));
