// The floor: cases by status (a chart whose bars list their cases), escalations, overdue
// follow-ups and merge suggestions; then the insights (insights.js): service metrics, VOC
// topics and the customers at risk. Each section is one entry of SECTIONS.
import { html, useEffect, useState } from "./vendor/htm-preact.module.js";
import { request } from "./graphql.js";
import { OpenCustomer } from "./open_customer.js";
import { dateTime } from "./i18n.js";
import { AtRiskSection, MetricsSection, TopicsSection } from "./insights.js";
import { can } from "./roles.js";

const CASE = "id customerId status escalationLevel queue ownerAgentId updatedAt";
const FLOOR = `query Floor {
  all: cases(first: 100) { edges { node { ${CASE} } } }
  escalated: cases(filter: { escalatedOnly: true }, first: 20) { edges { node { ${CASE} } } }
  overdue: cases(filter: { overdueFollowUpsOnly: true }, first: 20) { edges { node { ${CASE} } } }
}`;
const STATUSES = ["OPEN", "PENDING", "ESCALATED", "RESOLVED"];

function CaseList({ cases, t, language, openCustomer, label }) {
  if (!cases.length) return html`<p class="muted">${t("none")}</p>`;
  return html`<table aria-label=${label}>
    <tbody>
      ${cases.map(
        (c) => html`<tr>
          <td><span class="tag">${c.id}</span></td>
          <td class="case-status">${c.status}</td>
          <td>${c.escalationLevel > 0 ? t("escalation", { level: c.escalationLevel }) : ""}</td>
          <td>${c.queue || ""}</td>
          <td>${dateTime(c.updatedAt, language)}</td>
          <td>
            <${OpenCustomer} openCustomer=${openCustomer} customerId=${c.customerId} t=${t} />
          </td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

/** Counts as an SVG bar chart; each bar is a button that lists its cases. */
function StatusChart({ counts, chosen, choose, t }) {
  const max = Math.max(1, ...STATUSES.map((s) => counts[s] || 0));
  return html`<figure class="chart">
    <figcaption>${t("byStatus")}</figcaption>
    <div class="bars" role="group" aria-label=${t("byStatus")}>
      ${STATUSES.map(
        (s) => html`<button
          type="button"
          class="bar"
          aria-pressed=${chosen === s}
          aria-label=${`${s}: ${counts[s] || 0}`}
          onClick=${() => choose(chosen === s ? null : s)}
        >
          <svg viewBox="0 0 40 100" width="40" height="100" aria-hidden="true">
            <rect x="4" y=${100 - (90 * (counts[s] || 0)) / max} width="32" height=${(90 * (counts[s] || 0)) / max} />
          </svg>
          <span>${s}</span>
          <strong class="figure" data-status=${s}>${counts[s] || 0}</strong>
        </button>`,
      )}
    </div>
  </figure>`;
}

function CasesSection({ data, t, language, openCustomer }) {
  const [chosen, choose] = useState(null);
  const all = data.all.edges.map((e) => e.node);
  const counts = {};
  for (const c of all) counts[c.status] = (counts[c.status] || 0) + 1;
  const shown = chosen ? all.filter((c) => c.status === chosen) : all;
  return html`<section aria-labelledby="floor-cases">
    <h2 id="floor-cases">${t("cases")}</h2>
    <${StatusChart} counts=${counts} chosen=${chosen} choose=${choose} t=${t} />
    <${CaseList} cases=${shown} t=${t} language=${language} openCustomer=${openCustomer} label=${t("cases")} />
  </section>`;
}

/** A section listing the cases of one of the floor query's lists (`key`). */
function caseListSection(key, title) {
  return function CaseListSection({ data, t, language, openCustomer }) {
    return html`<section aria-labelledby=${`floor-${key}`}>
      <h2 id=${`floor-${key}`}>${t(title)}</h2>
      <${CaseList} cases=${data[key].edges.map((e) => e.node)} t=${t} language=${language}
        openCustomer=${openCustomer} label=${t(title)} />
    </section>`;
  };
}

function SuggestionsSection({ token, t }) {
  const [suggestions, setSuggestions] = useState(null);
  useEffect(() => {
    request(token, "query S { mergeSuggestions(first: 20) { id signals customerIds createdAt } }").then(
      (d) => setSuggestions(d.mergeSuggestions),
      () => setSuggestions([]),
    );
  }, [token]);
  return html`<section aria-labelledby="floor-suggestions">
    <h2 id="floor-suggestions">${t("mergeSuggestions")}</h2>
    ${suggestions && suggestions.length === 0 && html`<p class="muted">${t("none")}</p>`}
    <ul>
      ${(suggestions || []).map((s) => html`<li>${s.customerIds.join(" ↔ ")} — ${s.signals.join(", ")}</li>`)}
    </ul>
  </section>`;
}

/** The floor's sections, in order; `roles` names who may see each. */
export const SECTIONS = [
  { View: CasesSection, roles: ["supervisor", "analyst", "admin"] },
  { View: caseListSection("escalated", "escalatedCases"), roles: ["supervisor", "analyst", "admin"] },
  { View: caseListSection("overdue", "overdueFollowUps"), roles: ["supervisor", "analyst", "admin"] },
  { View: SuggestionsSection, roles: ["supervisor"] },
  { View: MetricsSection, roles: ["supervisor", "analyst"] },
  { View: TopicsSection, roles: ["supervisor", "analyst"] },
  { View: AtRiskSection, roles: ["supervisor"] },
];

function Floor({ token, roles, t, language, live, openCustomer }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    request(token, FLOOR).then(setData, (e) => setError(e.message));
  }, [token]);
  if (error) return html`<p role="alert">${t("error", { error })}</p>`;
  if (!data) return null;
  const open = can(roles, "personal") ? openCustomer : null;
  return html`<div class="floor">
    ${SECTIONS.filter((s) => s.roles.some((r) => roles.includes(r))).map(
      (s) => html`<${s.View} data=${data} token=${token} t=${t} language=${language} live=${live} openCustomer=${open} />`,
    )}
  </div>`;
}

export const supervisorPanel = {
  id: "supervisor",
  label: "panel_supervisor",
  roles: ["supervisor", "analyst", "admin"],
  View: Floor,
};
