// Help for an open case on the desk: resolved cases like it (with what solved them) and a
// search of the knowledge articles supervisors promoted from such resolutions.
import { html, useEffect, useState } from "./vendor/htm-preact.module.js";
import { request } from "./graphql.js";

const SIMILAR = `query Similar($caseId: ID!) {
  similarResolvedCases(caseId: $caseId, first: 3) { caseId score resolutionNote }
}`;
const KNOWLEDGE = `query Knowledge($query: String!) {
  knowledgeArticles(query: $query, first: 5) { id title body }
}`;
// The gateway refuses longer queries (gateway/insights.py); the field says so before sending.
const MAX_QUERY = 500;

function Similar({ token, caseId, t }) {
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setFound(null);
    request(token, SIMILAR, { caseId }).then((d) => setFound(d.similarResolvedCases), (e) => setError(e.message));
  }, [caseId]);
  return html`<div>
    <h3>${t("similarCases")}</h3>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    ${found && found.length === 0 && html`<p class="muted">${t("none")}</p>`}
    <ul class="similar" aria-label=${t("similarCases")}>
      ${(found || []).map(
        (c) => html`<li>
          <span class="tag">${c.caseId}</span> <span class="muted">${Math.round(c.score * 100)}%</span>
          <p>${c.resolutionNote || t("noNote")}</p>
        </li>`,
      )}
    </ul>
  </div>`;
}

function Knowledge({ token, t }) {
  const [query, setQuery] = useState("");
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  const submit = (event) => {
    event.preventDefault();
    setError(null);
    request(token, KNOWLEDGE, { query: query.trim() }).then(
      (d) => setFound(d.knowledgeArticles),
      (e) => setError(e.message),
    );
  };
  return html`<form role="search" aria-label=${t("knowledge")} onSubmit=${submit}>
    <h3>${t("knowledge")}</h3>
    <input type="search" aria-label=${t("knowledgeSearch")} value=${query} required maxlength=${MAX_QUERY}
      onInput=${(e) => setQuery(e.target.value)} />
    <button type="submit">${t("searchButton")}</button>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    ${found && found.length === 0 && html`<p class="muted">${t("none")}</p>`}
    <ul class="articles">
      ${(found || []).map((a) => html`<li><strong>${a.title}</strong><p>${a.body}</p></li>`)}
    </ul>
  </form>`;
}

export function CaseAssist({ token, caseId, t }) {
  return html`<section class="assist" aria-labelledby="assist-title">
    <h2 id="assist-title">${t("assist")}</h2>
    ${caseId && html`<${Similar} token=${token} caseId=${caseId} t=${t} />`}
    <${Knowledge} token=${token} t=${t} />
  </section>`;
}
