// The supervisor's insights: service metrics as SVG charts (each bar lists its cases, with the
// CSV), VOC topics with trend and spikes, and the customers at risk, live over atRiskChanged.
import { html, useEffect, useState } from "./vendor/htm-preact.module.js";
import { request } from "./graphql.js";
import { OpenCustomer } from "./open_customer.js";
import { dateTime } from "./i18n.js";
import { download } from "./download.js";

const DAY_MS = 86_400_000;
// The last 13 weeks, up to now: enough for weekly and monthly trends.
function range() {
  const until = new Date();
  return { since: new Date(until.getTime() - 91 * DAY_MS).toISOString(), until: until.toISOString() };
}

const METRICS = `query Metrics($since: DateTime!, $until: DateTime!, $period: MetricPeriod!,
    $groupBy: MetricGroup!) {
  serviceMetrics(since: $since, until: $until, period: $period, groupBy: $groupBy) {
    rows { period group contacts figures { name value } cancellationsByReason { reason count } }
  }
}`;
const CASES = `query Cases($since: DateTime!, $until: DateTime!, $period: MetricPeriod!,
    $groupBy: MetricGroup!, $figure: String!, $rowPeriod: String!, $rowGroup: String!) {
  metricCases(since: $since, until: $until, period: $period, groupBy: $groupBy, figure: $figure,
      rowPeriod: $rowPeriod, rowGroup: $rowGroup, first: 50) {
    truncated cases { caseId customerId openedAt }
  }
}`;
const CSV = CASES.replace("truncated cases { caseId customerId openedAt }", "csv");

// The charted figures, and how each value reads.
const FIGURES = [
  ["first_response_seconds", "seconds"],
  ["average_response_seconds", "seconds"],
  ["resolution_seconds", "seconds"],
  ["csat_mean", "score"],
  ["retention_rate", "rate"],
];
const PERIODS = ["DAY", "WEEK", "MONTH"];
const GROUPS = ["NONE", "AGENT", "CHANNEL"];

// Durations on a chart read at a glance: minutes, hours or days, one decimal at most.
function span(seconds, t) {
  if (seconds < 3600) return t("unitMinutes", { n: Math.round(seconds / 60) });
  if (seconds < 172_800) return t("unitHours", { n: (seconds / 3600).toFixed(1) });
  return t("unitDays", { n: (seconds / 86_400).toFixed(1) });
}

function shown(value, kind, t) {
  if (value == null) return "–";
  if (kind === "seconds") return span(value, t);
  if (kind === "rate") return `${Math.round(value * 100)}%`;
  if (kind === "score") return value.toFixed(2);
  return String(value);
}

function rowLabel(row) {
  return [row.period, row.group].filter(Boolean).join(" · ") || "—";
}

/** One figure across the rows, as SVG bars; each bar is a button that lists its cases. */
function BarChart({ title, bars, chosen, choose }) {
  const max = Math.max(1e-9, ...bars.map((b) => b.value || 0));
  return html`<figure class="chart metric-chart">
    <figcaption>${title}</figcaption>
    <div class="bars" role="group" aria-label=${title}>
      ${bars.length === 0 && html`<span class="muted">–</span>`}
      ${bars.map((b) => {
        const height = (90 * (b.value || 0)) / max;
        return html`<button
          type="button"
          class="bar"
          aria-pressed=${chosen === b.key}
          aria-label=${`${b.label}: ${b.text}`}
          title=${`${b.label}: ${b.text}`}
          disabled=${b.value == null}
          onClick=${() => choose(b)}
        >
          <svg viewBox="0 0 40 100" width="40" height="100" aria-hidden="true">
            <rect x="4" y=${100 - height} width="32" height=${height} />
          </svg>
          <span>${b.label}</span>
          <strong class="figure">${b.text}</strong>
        </button>`;
      })}
    </div>
  </figure>`;
}

/** The cases behind one figure of one row, openable, with the CSV of all of them. */
function FigureCases({ token, t, language, openCustomer, ask }) {
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setFound(null);
    request(token, CASES, ask.variables).then((d) => setFound(d.metricCases), (e) => setError(e.message));
  }, [ask.key]);
  const csv = () =>
    request(token, CSV, ask.variables).then(
      (d) => download(`${ask.variables.figure}.csv`, "text/csv", d.metricCases.csv),
      (e) => setError(e.message),
    );
  const label = ask.title
    ? t(ask.title, { row: ask.row })
    : t("figureCases", { figure: t(`figure_${ask.variables.figure}`), row: ask.row });
  return html`<div class="figure-cases">
    <h3>${label}</h3>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    <button type="button" onClick=${csv}>${t("downloadCsv")}</button>
    ${found &&
    html`<table aria-label=${t("figureCasesTable")}>
      <tbody>
        ${found.cases.map(
          (c) => html`<tr>
            <td><span class="tag">${c.caseId}</span></td>
            <td>${dateTime(c.openedAt, language)}</td>
            <td>
              <${OpenCustomer} openCustomer=${openCustomer} customerId=${c.customerId} t=${t} />
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${found.cases.length === 0 && html`<p class="muted">${t("none")}</p>`}
    ${found.truncated && html`<p class="muted">${t("moreInCsv")}</p>`}`}
  </div>`;
}

function Choice({ label, value, options, onChange, t }) {
  return html`<label>
    ${label}
    <select value=${value} onChange=${(e) => onChange(e.target.value)}>
      ${options.map((o) => html`<option value=${o}>${t(`opt_${o}`)}</option>`)}
    </select>
  </label>`;
}

export function MetricsSection({ token, t, language, openCustomer }) {
  const [period, setPeriod] = useState("WEEK");
  const [groupBy, setGroupBy] = useState("NONE");
  const [when] = useState(range);
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [ask, setAsk] = useState(null);
  useEffect(() => {
    setAsk(null);
    request(token, METRICS, { ...when, period, groupBy }).then(
      (d) => setRows(d.serviceMetrics.rows),
      (e) => setError(e.message),
    );
  }, [token, period, groupBy]);
  const drill = (figure, row) => {
    const variables = { ...when, period, groupBy, figure, rowPeriod: row.period, rowGroup: row.group };
    const key = `${figure}|${row.period}|${row.group}`;
    setAsk(ask && ask.key === key ? null : { key, variables, row: rowLabel(row) });
  };
  const reasons = {};
  for (const row of rows || []) {
    for (const r of row.cancellationsByReason) reasons[r.reason] = (reasons[r.reason] || 0) + r.count;
  }
  return html`<section aria-labelledby="floor-metrics" class="metrics">
    <h2 id="floor-metrics">${t("serviceMetrics")}</h2>
    <div class="filters">
      <${Choice} label=${t("period")} value=${period} options=${PERIODS} onChange=${setPeriod} t=${t} />
      <${Choice} label=${t("groupBy")} value=${groupBy} options=${GROUPS} onChange=${setGroupBy} t=${t} />
    </div>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    ${rows &&
    html`<div class="charts">
      ${FIGURES.map(([figure, kind]) => {
        const bars = rows.map((row) => {
          const value = (row.figures.find((f) => f.name === figure) || {}).value;
          return { key: `${figure}|${row.period}|${row.group}`, label: rowLabel(row), value, text: shown(value, kind, t), row };
        });
        return html`<${BarChart}
          title=${t(`figure_${figure}`)}
          bars=${bars}
          chosen=${ask && ask.key}
          choose=${(b) => drill(figure, b.row)}
        />`;
      })}
      <${BarChart}
        title=${t("cancellationReasons")}
        bars=${Object.entries(reasons).map(([reason, count]) => ({
          key: `cancel|${reason}`,
          label: t(`reason_${reason}`),
          value: count,
          text: String(count),
        }))}
        chosen=${null}
        choose=${() =>
          setAsk({
            key: "cancellation_requests||",
            row: t("allCases"),
            variables: { ...when, period: "ALL", groupBy: "NONE", figure: "cancellation_requests", rowPeriod: "", rowGroup: "" },
          })}
      />
    </div>`}
    ${ask && html`<${FigureCases} token=${token} t=${t} language=${language} openCustomer=${openCustomer} ask=${ask} />`}
  </section>`;
}

const TOPICS = `query Topics($since: DateTime!, $until: DateTime!) {
  vocTopics(since: $since, until: $until) {
    unplaced
    topics { topic { id label } messages thisWeek lastWeek spike cases examples { eventId text } }
  }
}`;

/** Last week against this week as two SVG bars. */
function Trend({ topic, t }) {
  const max = Math.max(1, topic.lastWeek, topic.thisWeek);
  const h = (n) => (36 * n) / max;
  return html`<svg class="trend" viewBox="0 0 40 40" width="40" height="40" role="img"
      aria-label=${t("trend", { last: topic.lastWeek, now: topic.thisWeek })}>
    <rect class="last" x="4" y=${40 - h(topic.lastWeek)} width="14" height=${h(topic.lastWeek)} />
    <rect class="now" x="22" y=${40 - h(topic.thisWeek)} width="14" height=${h(topic.thisWeek)} />
  </svg>`;
}

export function TopicsSection({ token, t, language, openCustomer }) {
  const [when] = useState(range);
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  const [ask, setAsk] = useState(null);
  useEffect(() => {
    request(token, TOPICS, when).then((d) => setFound(d.vocTopics), (e) => setError(e.message));
  }, [token]);
  // A topic's cases are the cases of its row when figures are grouped by topic.
  const drill = (v) => {
    const key = `topic|${v.topic.id}`;
    const variables = { ...when, period: "ALL", groupBy: "TOPIC", figure: "contacts_per_case", rowPeriod: "", rowGroup: v.topic.id };
    setAsk(ask && ask.key === key ? null : { key, variables, row: v.topic.label, title: "topicCases" });
  };
  return html`<section aria-labelledby="floor-topics">
    <h2 id="floor-topics">${t("vocTopics")}</h2>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    ${found && found.topics.length === 0 && html`<p class="muted">${t("none")}</p>`}
    ${found &&
    found.topics.length > 0 &&
    html`<table aria-label=${t("vocTopics")} class="topics">
      <thead>
        <tr><th>${t("topic")}</th><th>${t("messages")}</th><th>${t("trendTitle")}</th><th>${t("casesCount")}</th><th>${t("examples")}</th></tr>
      </thead>
      <tbody>
        ${found.topics.map(
          (v) => html`<tr class="topic" data-spike=${String(v.spike)}>
            <td>${v.topic.label} ${v.spike && html`<span class="tag spike">${t("spike")}</span>`}</td>
            <td>${v.messages}</td>
            <td><${Trend} topic=${v} t=${t} /></td>
            <td>
              <button type="button" aria-pressed=${ask && ask.key === `topic|${v.topic.id}`}
                aria-label=${t("topicCasesOf", { topic: v.topic.label, count: v.cases })} onClick=${() => drill(v)}>
                ${v.cases}
              </button>
            </td>
            <td><ul class="examples">${v.examples.slice(0, 2).map((e) => html`<li>${e.text}</li>`)}</ul></td>
          </tr>`,
        )}
      </tbody>
    </table>`}
    ${ask && html`<${FigureCases} token=${token} t=${t} language=${language} openCustomer=${openCustomer} ask=${ask} />`}
  </section>`;
}

const AT_RISK = `query AtRisk { customersAtRisk(first: 20) {
  customerId score reasons { code weight caseId eventId } customer { displayName }
} }`;
const AT_RISK_LIVE = "subscription AtRisk { atRiskChanged { customerIds } }";

export function AtRiskSection({ token, t, live, openCustomer }) {
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  const load = () => request(token, AT_RISK).then((d) => setFound(d.customersAtRisk), (e) => setError(e.message));
  useEffect(() => {
    load();
  }, [token]);
  useEffect(() => {
    if (!live) return undefined;
    return live.subscribe(AT_RISK_LIVE, {}, { onData: load, onReconnect: load });
  }, [live]);
  return html`<section aria-labelledby="floor-at-risk">
    <h2 id="floor-at-risk">${t("atRisk")}</h2>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    ${found && found.length === 0 && html`<p class="muted">${t("none")}</p>`}
    ${found &&
    found.length > 0 &&
    html`<table aria-label=${t("atRisk")}>
      <tbody>
        ${found.map(
          (c) => html`<tr class="at-risk">
            <td>${(c.customer && c.customer.displayName) || c.customerId}</td>
            <td><strong class="figure">${c.score}</strong></td>
            <td>
              <ul class="reasons">
                ${c.reasons.map(
                  (r) => html`<li>${t(`risk_${r.code}`)} (+${r.weight})${r.caseId && html` <span class="tag">${r.caseId}</span>`}</li>`,
                )}
              </ul>
            </td>
            <td>
              <${OpenCustomer} openCustomer=${openCustomer} customerId=${c.customerId} t=${t} />
            </td>
          </tr>`,
        )}
      </tbody>
    </table>`}
  </section>`;
}
