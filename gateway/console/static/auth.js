// Sign-in: the local issuer's role picker in `make run`, OIDC code + PKCE in production.
// The token lives in this tab's sessionStorage only (GraphiQL in the same tab reuses it).
const TOKEN = "tsunagu.token";
const PKCE = "tsunagu.pkce";

export function storedToken() {
  const token = window.sessionStorage.getItem(TOKEN);
  if (!token) return null;
  const claims = claimsOf(token);
  if (!claims || (claims.exp && claims.exp * 1000 < Date.now())) {
    signOut();
    return null;
  }
  return token;
}

export function signOut() {
  window.sessionStorage.removeItem(TOKEN);
}

/** The token's claims, read for display and navigation only: the gateway verifies it. */
export function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(payload), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export async function signInLocally(url, role) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ role }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  window.sessionStorage.setItem(TOKEN, body.token);
  return body.token;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** A PKCE code verifier: 32 random bytes, base64url (RFC 7636, 43 characters). */
export function codeVerifier() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** The S256 code challenge of `verifier`. */
export async function codeChallenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(digest);
}

function redirectUri() {
  return window.location.origin + "/console";
}

/** Send the browser to the IdP's authorization endpoint (code flow with PKCE). */
export async function startOidc(oidc) {
  const verifier = codeVerifier();
  const state = codeVerifier();
  window.sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state }));
  const url = new URL(oidc.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: oidc.clientId,
    redirect_uri: redirectUri(),
    scope: oidc.scope,
    state,
    code_challenge: await codeChallenge(verifier),
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

/** On the way back from the IdP: swap the code for a token; null when this is no callback. */
export async function finishOidc(oidc) {
  const params = new URLSearchParams(window.location.search);
  const code = params.get("code");
  if (!oidc || !code) return null;
  const pending = JSON.parse(window.sessionStorage.getItem(PKCE) || "null");
  window.sessionStorage.removeItem(PKCE);
  window.history.replaceState(null, "", "/console");
  if (!pending || pending.state !== params.get("state")) throw new Error("state mismatch");
  const response = await fetch(oidc.tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(),
      client_id: oidc.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const body = await response.json();
  if (!response.ok || !body.access_token) throw new Error(body.error || response.statusText);
  window.sessionStorage.setItem(TOKEN, body.access_token);
  return body.access_token;
}
