// The console's shell: configuration, sign-in, role-aware navigation, language, live status.
import { html, render, useEffect, useMemo, useState } from "./vendor/htm-preact.module.js";
import { claimsOf, finishOidc, signInLocally, signOut, startOidc, storedToken } from "./auth.js";
import { LiveConnection } from "./graphql.js";
import { LANGUAGES, chooseLanguage, initialLanguage, translator } from "./i18n.js";
import { panelsFor } from "./panels.js";
import { can } from "./roles.js";

const ROLES = ["agent", "supervisor", "analyst", "admin", "privacy_officer"];

function LanguageSwitch({ language, setLanguage, t }) {
  return html`<label class="language"
    >${t("language")}
    <select
      value=${language}
      onChange=${(e) => {
        chooseLanguage(e.target.value);
        setLanguage(e.target.value);
      }}
    >
      ${LANGUAGES.map((l) => html`<option value=${l}>${l === "ja" ? "日本語" : "English"}</option>`)}
    </select></label
  >`;
}

function SignIn({ config, onToken, t, error }) {
  const [failure, setFailure] = useState(error);
  const local = async (role) => {
    try {
      onToken(await signInLocally(config.localSignInUrl, role));
    } catch (e) {
      setFailure(e.message);
    }
  };
  return html`<section class="signin" aria-labelledby="signin-title">
    <h2 id="signin-title">${t("signIn")}</h2>
    ${config.localSignInUrl &&
    html`<p>${t("signInLocal")}</p>
      <div class="roles" role="group" aria-label=${t("signInAs")}>
        ${ROLES.map(
          (role) =>
            html`<button type="button" onClick=${() => local(role)}>${t(`role_${role}`)}</button>`,
        )}
      </div>`}
    ${config.oidc &&
    html`<p><button type="button" onClick=${() => startOidc(config.oidc)}>${t("signInOidc")}</button></p>`}
    ${!config.localSignInUrl && !config.oidc && html`<p>${t("noSignIn")}</p>`}
    ${failure && html`<p role="alert">${t("signInFailed", { error: failure })}</p>`}
  </section>`;
}

function Console({ token, config, language, setLanguage, t, onSignOut }) {
  const claims = useMemo(() => claimsOf(token) || {}, [token]);
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  const panels = panelsFor(roles);
  const [active, setActive] = useState(panels.length ? panels[0].id : null);
  const [focus, setFocus] = useState(null);
  const [liveState, setLiveState] = useState("offline");
  const live = useMemo(
    () => (can(roles, "watch") ? new LiveConnection(token, setLiveState) : null),
    [token],
  );
  useEffect(() => () => live && live.close(), [live]);
  const openCustomer = (panelId, customerId) => {
    setFocus({ customerId, at: Date.now() });
    setActive(panelId);
  };
  const panel = panels.find((p) => p.id === active);
  return html`<div class="shell">
    <header>
      <h1>${t("title")}</h1>
      <nav aria-label="Panels">
        ${panels.map(
          (p) =>
            html`<button
              type="button"
              aria-current=${p.id === active ? "page" : null}
              onClick=${() => setActive(p.id)}
            >
              ${t(p.label)}
            </button>`,
        )}
        ${config.graphiql && html`<a href=${config.graphqlPath} target="_blank">${t("graphiql")}</a>`}
      </nav>
      <span class="who">${claims.name || claims.sub} · ${claims.tenant} · ${roles.map((r) => t(`role_${r}`)).join(", ")}</span>
      ${live && html`<span class=${`live live-${liveState}`} role="status">${t(liveState === "live" ? "live" : liveState)}</span>`}
      <${LanguageSwitch} language=${language} setLanguage=${setLanguage} t=${t} />
      <button type="button" onClick=${onSignOut}>${t("signOut")}</button>
    </header>
    <main>
      ${panel &&
      html`<${panel.View}
        key=${panel.id}
        token=${token}
        roles=${roles}
        t=${t}
        language=${language}
        live=${live}
        focus=${focus}
        openCustomer=${openCustomer}
      />`}
    </main>
  </div>`;
}

function App({ config }) {
  const [language, setLanguage] = useState(initialLanguage());
  const [token, setToken] = useState(storedToken());
  const [error, setError] = useState(null);
  const t = translator(language);
  useEffect(() => {
    document.documentElement.lang = language;
    document.title = t("title");
  }, [language]);
  useEffect(() => {
    finishOidc(config.oidc).then((fresh) => fresh && setToken(fresh), (e) => setError(e.message));
  }, []);
  if (!token) {
    return html`<div class="shell">
      <header>
        <h1>${t("title")}</h1>
        <${LanguageSwitch} language=${language} setLanguage=${setLanguage} t=${t} />
      </header>
      <main><${SignIn} config=${config} onToken=${setToken} t=${t} error=${error} /></main>
    </div>`;
  }
  return html`<${Console}
    token=${token}
    config=${config}
    language=${language}
    setLanguage=${setLanguage}
    t=${t}
    onSignOut=${() => {
      signOut();
      setToken(null);
    }}
  />`;
}

const config = await (await fetch("/console/config.json")).json();
render(html`<${App} config=${config} />`, document.getElementById("app"));
