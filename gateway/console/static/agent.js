// The agent desk: screen-pop search, the customer at a glance, one live timeline, actions.
import { html, useEffect, useRef, useState } from "./vendor/htm-preact.module.js";
import { CaseAssist } from "./assist.js";
import { request } from "./graphql.js";
import { dateTime, duration } from "./i18n.js";
import { can } from "./roles.js";

const CHANNELS = ["CHAT", "VOICE", "EMAIL", "SMS", "SOCIAL", "WEB", "AGENT_DESK"];
const KINDS = [
  "MESSAGE", "CALL_STARTED", "CALL_TRANSFERRED", "CALL_ENDED", "EMAIL", "FORM_SUBMISSION",
  "NOTE", "HANDOFF", "ESCALATION", "PROGRESS_UPDATE", "TRANSFER", "RESOLUTION", "TAG",
  "CSAT_RESPONSE", "CANCELLATION_REQUEST", "CANCELLATION_OUTCOME", "CUSTOMERS_MERGED",
  "MERGE_SPLIT",
];
const CANCELLATION_REASONS = [
  "NO_EFFECT", "SURPLUS_STOCK", "CONDITION_IMPROVED", "FINANCIAL_BURDEN",
  "SWITCHING_TO_COMPETITOR", "HEALTH", "OTHER",
];
const PAGE = 20;

// Agent actions carry their words in the action, not in `text`.
const ENTRY = `eventId channel kind direction occurredAt text subject caseId switchedFrom
  actor { type displayName }
  detail { ... on AgentActionDetail { action { __typename
    ... on NoteAction { text }
    ... on HandoffAction { summary toChannel toQueue toAgent openQuestions }
    ... on EscalationAction { level reason }
    ... on ProgressUpdateAction { message }
    ... on TransferAction { toDepartment reason }
    ... on ResolutionAction { summary }
    ... on CancellationRequestAction { cancellationReason: reason reasonDetail }
    ... on CancellationOutcomeAction { outcome note }
    ... on SplitMergeAction { reason }
    ... on MergeCustomersAction { reason } } } }`;

/** An agent action in one line: what the form said. */
function actionText(entry) {
  const action = entry.detail && entry.detail.action;
  if (!action) return null;
  const parts = [
    action.toChannel || action.toQueue || action.toAgent || action.toDepartment
      ? `→ ${[action.toChannel, action.toQueue, action.toAgent, action.toDepartment].filter(Boolean).join(" / ")}`
      : null,
    action.level ? `L${action.level}` : null,
    action.outcome || action.cancellationReason,
    action.summary || action.text || action.message || action.reason,
    action.reasonDetail || action.note,
    action.openQuestions && action.openQuestions.length ? `? ${action.openQuestions.join(" · ")}` : null,
  ];
  return parts.filter(Boolean).join(" — ") || null;
}

function customerQuery(roles) {
  const ledger = can(roles, "ledger")
    ? `mergeHistory { id survivorId mergedIds rule status at reason actor { displayName }
         evidence { customerId identifier { kind value } } splitAt splitReason }`
    : "";
  return `query Customer($id: ID!) { customer(id: $id) {
    id displayName channels interactionCount mergedIds
    identifiers { kind value network verified }
    protectedIdentifiers { kind value network reason }
    lastAgentRemark { kind text openQuestions occurredAt agent { displayName } }
    openCase { id status escalationLevel queue ownerAgentId openedAt firstResponseAt
      firstResponseTimeSeconds followUps { id reason dueAt done overdue } }
    cases(first: 20) { edges { node { id status openedAt } } }
    ${ledger}
  } }`;
}

const TIMELINE = `query Timeline($id: ID!, $first: Int!, $after: String, $channels: [Channel!],
    $kinds: [Kind!], $caseId: ID, $since: DateTime, $until: DateTime) {
  customer(id: $id) { id timeline(first: $first, after: $after, channels: $channels,
      kinds: $kinds, caseId: $caseId, since: $since, until: $until) {
    edges { node { ${ENTRY} } } pageInfo { hasNextPage endCursor } } } }`;

const LIVE = `subscription Live($id: ID!) { timelineUpdated(customerId: $id) {
  eventId customerId mergedInto entry { ${ENTRY} } } }`;

/** How a typed query is looked up: an identifier kind, or null for a name. */
export function identifierKind(query) {
  const text = query.normalize("NFKC").trim();
  if (text.includes("@")) return "EMAIL";
  const digits = text.replace(/[^0-9]/g, "");
  if (/^[+0-9\s\-().]+$/.test(text) && digits.length >= 6) return "PHONE";
  return null;
}

function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, []);
  return now;
}

export function Search({ token, roles, t, onFound }) {
  const [query, setQuery] = useState("");
  const [results, setResults] = useState(null);
  const [message, setMessage] = useState(null);
  const find = async (event) => {
    event.preventDefault();
    const text = query.trim();
    if (!text) return;
    setMessage(null);
    setResults(null);
    try {
      const kind = identifierKind(text);
      if (kind) {
        const data = await request(
          token,
          "query Pop($kind: IdentifierKind!, $value: String!) { customerByIdentifier(kind: $kind, value: $value) { id } }",
          { kind, value: text },
        );
        if (data.customerByIdentifier) return onFound(data.customerByIdentifier.id);
      }
      if (!can(roles, "search")) {
        return setMessage(kind ? t("notFound", { query: text }) : t("nameSearchNotAllowed"));
      }
      const data = await request(
        token,
        "query Find($q: String!) { searchCustomers(query: $q, first: 20) { id displayName channels } }",
        { q: text },
      );
      const found = data.searchCustomers;
      if (found.length === 1) return onFound(found[0].id);
      if (!found.length) return setMessage(t("notFound", { query: text }));
      setResults(found);
    } catch (e) {
      setMessage(t("error", { error: e.message }));
    }
  };
  return html`<form class="search" role="search" onSubmit=${find}>
      <input
        type="search"
        aria-label=${t("search")}
        placeholder=${t("searchHint")}
        value=${query}
        onInput=${(e) => setQuery(e.target.value)}
      />
      <button type="submit">${t("searchButton")}</button>
    </form>
    ${message && html`<p role="status">${message}</p>`}
    ${results &&
    html`<ul aria-label=${t("results")} class="results">
      ${results.map(
        (c) =>
          html`<li>
            <button type="button" onClick=${() => onFound(c.id)}>${c.displayName || c.id}</button>
            <span class="muted">${c.channels.join(" · ")}</span>
          </li>`,
      )}
    </ul>`}`;
}

function Clock({ openCase, t }) {
  const now = useNow();
  const opened = openCase.openedAt ? Date.parse(openCase.openedAt) : now;
  const first =
    openCase.firstResponseTimeSeconds != null
      ? duration(openCase.firstResponseTimeSeconds)
      : t("waiting", { time: duration((now - opened) / 1000) });
  return html`<dl class="clocks">
    <dt>${t("firstResponse")}</dt>
    <dd>${first}</dd>
    <dt>${t("age")}</dt>
    <dd>${t("open", { time: duration((now - opened) / 1000) })}</dd>
  </dl>`;
}

function Profile({ customer, t, language }) {
  const remark = customer.lastAgentRemark;
  const openCase = customer.openCase;
  return html`<section class="profile" aria-labelledby="customer-name">
    ${remark &&
    html`<aside class="remark" aria-label=${t("lastRemark")}>
      <strong>${t("lastRemark")}</strong> (${remark.agent && remark.agent.displayName},
      ${dateTime(remark.occurredAt, language)})
      <p>${remark.text}</p>
      ${remark.openQuestions.length > 0 &&
      html`<div>
        ${t("openQuestions")}:
        <ul>
          ${remark.openQuestions.map((q) => html`<li>${q}</li>`)}
        </ul>
      </div>`}
    </aside>`}
    <h2 id="customer-name" tabindex="-1">${customer.displayName || customer.id}</h2>
    <p class="muted">${t("interactions", { count: customer.interactionCount })}</p>
    <h3>${t("identifiers")}</h3>
    <ul class="identifiers">
      ${customer.identifiers.map(
        (i) => html`<li><span class="tag">${i.kind}</span> ${i.value}${i.verified ? " ✓" : ""}</li>`,
      )}
    </ul>
    ${customer.protectedIdentifiers.length > 0 &&
    html`<h3>${t("protected")}</h3>
      <ul class="identifiers">
        ${customer.protectedIdentifiers.map(
          (i) => html`<li><span class="tag">${i.kind}</span> ${i.value} — ${i.reason}</li>`,
        )}
      </ul>`}
    <h3>${t("channels")}</h3>
    <p>${customer.channels.map((c) => html`<span class=${`channel ch-${c}`}>${c}</span> `)}</p>
    <h3>${t("openCase")}</h3>
    ${openCase
      ? html`<div class="case" data-case-status=${openCase.status}>
          <p>
            <span class="tag">${openCase.id}</span>
            <strong class="case-status">${openCase.status}</strong>
            ${openCase.escalationLevel > 0 &&
            html` · <span>${t("escalation", { level: openCase.escalationLevel })}</span>`}
          </p>
          <${Clock} openCase=${openCase} t=${t} />
          ${openCase.followUps.length > 0 &&
          html`<h4>${t("followUps")}</h4>
            <ul>
              ${openCase.followUps.map(
                (f) =>
                  html`<li>
                    ${f.reason} — ${f.overdue ? t("overdue") : t("due", { time: dateTime(f.dueAt, language) })}
                  </li>`,
              )}
            </ul>`}
        </div>`
      : html`<p class="no-case">${t("noOpenCase")}</p>`}
  </section>`;
}

function Entry({ entry, t, language }) {
  return html`<li class=${`entry ch-${entry.channel}`} data-event-id=${entry.eventId}>
    <div class="entry-head">
      <span class=${`channel ch-${entry.channel}`}>${entry.channel}</span>
      <span class="kind">${entry.kind}</span>
      <time datetime=${entry.occurredAt}>${dateTime(entry.occurredAt, language)}</time>
      ${entry.actor && entry.actor.displayName && html`<span class="muted">${entry.actor.displayName}</span>`}
      ${entry.caseId && html`<span class="tag">${entry.caseId}</span>`}
      ${entry.switchedFrom &&
      html`<span class="switch">${t("switchedFrom", { channel: entry.switchedFrom })}</span>`}
    </div>
    ${entry.subject && html`<p class="subject">${entry.subject}</p>`}
    ${entry.text && html`<p class="text">${entry.text}</p>`}
    ${actionText(entry) && html`<p class="text">${actionText(entry)}</p>`}
  </li>`;
}

function matches(entry, filters) {
  if (filters.channel && entry.channel !== filters.channel) return false;
  if (filters.kind && entry.kind !== filters.kind) return false;
  if (filters.caseId && entry.caseId !== filters.caseId) return false;
  if (filters.until) return false; // a bounded window never grows live
  return true;
}

function Timeline({ token, customer, incoming, reloads, t, language }) {
  const [filters, setFilters] = useState({});
  const [entries, setEntries] = useState([]);
  const [page, setPage] = useState({ hasNextPage: false, endCursor: null });
  const [error, setError] = useState(null);
  const sentinel = useRef(null);
  const loading = useRef(false);

  const load = async (after) => {
    if (loading.current) return;
    loading.current = true;
    try {
      const data = await request(token, TIMELINE, {
        id: customer.id,
        first: PAGE,
        after,
        channels: filters.channel ? [filters.channel] : null,
        kinds: filters.kind ? [filters.kind] : null,
        caseId: filters.caseId || null,
        since: filters.since ? new Date(filters.since).toISOString() : null,
        until: filters.until ? new Date(filters.until).toISOString() : null,
      });
      const connection = data.customer.timeline;
      const nodes = connection.edges.map((e) => e.node);
      setEntries((old) => {
        const base = after ? old : [];
        const seen = new Set(base.map((e) => e.eventId));
        return [...base, ...nodes.filter((n) => !seen.has(n.eventId))];
      });
      setPage(connection.pageInfo);
      setError(null);
    } catch (e) {
      setError(e.message);
    } finally {
      loading.current = false;
    }
  };

  useEffect(() => {
    load(null);
  }, [customer.id, filters, reloads]);

  useEffect(() => {
    if (!incoming || !matches(incoming, filters)) return;
    setEntries((old) =>
      old.some((e) => e.eventId === incoming.eventId) ? old : [incoming, ...old],
    );
  }, [incoming]);

  // Infinite scroll: the next page loads when the end of the list comes into view.
  useEffect(() => {
    if (!sentinel.current || !page.hasNextPage) return undefined;
    const observer = new IntersectionObserver((seen) => {
      if (seen.some((s) => s.isIntersecting)) load(page.endCursor);
    });
    observer.observe(sentinel.current);
    return () => observer.disconnect();
  }, [page, entries.length]);

  const set = (name) => (e) => setFilters({ ...filters, [name]: e.target.value || undefined });
  const cases = customer.cases.edges.map((e) => e.node);
  return html`<section class="timeline" aria-labelledby="timeline-title">
    <h3 id="timeline-title">${t("timeline")}</h3>
    <fieldset class="filters">
      <legend>${t("filters")}</legend>
      ${[
        ["channel", "channel", CHANNELS.map((c) => [c, c])],
        ["kind", "kind", KINDS.map((k) => [k, k])],
        ["caseId", "case", cases.map((c) => [c.id, `${c.id} (${c.status})`])],
      ].map(
        ([name, label, options]) => html`<label>${t(label)}
          <select onChange=${set(name)}>
            <option value="">${t("all")}</option>
            ${options.map(([value, text]) => html`<option value=${value}>${text}</option>`)}
          </select>
        </label>`,
      )}
      <label>${t("since")} <input type="date" onChange=${set("since")} /></label>
      <label>${t("until")} <input type="date" onChange=${set("until")} /></label>
    </fieldset>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    <ol aria-label=${t("timeline")} class="entries">
      ${entries.map((entry) => html`<${Entry} key=${entry.eventId} entry=${entry} t=${t} language=${language} />`)}
    </ol>
    ${page.hasNextPage
      ? html`<div ref=${sentinel}>
          <button type="button" onClick=${() => load(page.endCursor)}>${t("loadMore")}</button>
        </div>`
      : html`<p class="muted">${t("end")}</p>`}
  </section>`;
}

const ACTIONS = [
  { id: "note", mutation: "addNote", fields: [{ name: "text", gql: "String!", area: true }] },
  {
    id: "handoff",
    mutation: "handoff",
    fields: [
      { name: "summary", gql: "String!", area: true },
      { name: "toChannel", gql: "Channel", options: CHANNELS.slice(0, 6), optional: true },
      { name: "toQueue", gql: "String", optional: true },
      { name: "toAgent", gql: "String", optional: true },
      { name: "openQuestions", label: "questions", gql: "[String!]", area: true, lines: true, optional: true },
    ],
  },
  {
    id: "escalate",
    mutation: "escalate",
    fields: [
      { name: "level", gql: "Int!", number: [1, 5] },
      { name: "reason", gql: "String!" },
    ],
  },
  {
    id: "transfer",
    mutation: "transfer",
    fields: [
      { name: "toDepartment", label: "department", gql: "String!" },
      { name: "reason", gql: "String!" },
    ],
  },
  { id: "progress", mutation: "sendProgressUpdate", fields: [{ name: "message", gql: "String!", area: true }] },
  { id: "resolve", mutation: "resolveCase", fields: [{ name: "summary", label: "resolution", gql: "String!", area: true }] },
  {
    id: "csat",
    mutation: "recordCsat",
    fields: [
      { name: "score", gql: "Int!", number: [1, 5] },
      { name: "comment", gql: "String", optional: true },
    ],
  },
  {
    id: "cancellation",
    mutation: "requestCancellation",
    fields: [
      { name: "reason", gql: "CancellationReason!", options: CANCELLATION_REASONS },
      { name: "reasonDetail", gql: "String", optional: true },
    ],
  },
  {
    id: "outcome",
    mutation: "recordCancellationOutcome",
    fields: [
      { name: "outcome", gql: "CancellationOutcome!", options: ["RETAINED", "CANCELLED", "PENDING"] },
      { name: "note", gql: "String", optional: true },
    ],
  },
];

function mutationOf(action) {
  const declared = action.fields.map((f) => `$${f.name}: ${f.gql}`).join(", ");
  const passed = action.fields.map((f) => `${f.name}: $${f.name}`).join(", ");
  return `mutation Act($customerId: ID!, $eventId: ID, ${declared}) {
    ${action.mutation}(customerId: $customerId, eventId: $eventId, ${passed}) {
      eventId status case { id status escalationLevel } } }`;
}

function valueOf(field, raw) {
  const text = (raw || "").trim();
  if (!text) return null;
  if (field.number) return Number.parseInt(text, 10);
  if (field.lines) return text.split("\n").map((l) => l.trim()).filter(Boolean);
  return text;
}

function Field({ action, field, t }) {
  const label = t(field.label || field.name);
  const required = !field.optional;
  const id = `${action.id}-${field.name}`;
  let control;
  if (field.options) {
    control = html`<select id=${id} name=${field.name} required=${required}>
      ${field.optional && html`<option value="">—</option>`}
      ${field.options.map((o) => html`<option value=${o}>${o}</option>`)}
    </select>`;
  } else if (field.number) {
    control = html`<input id=${id} name=${field.name} type="number" min=${field.number[0]} max=${field.number[1]} required=${required} />`;
  } else if (field.area) {
    control = html`<textarea id=${id} name=${field.name} rows="3" maxlength="4000" required=${required}></textarea>`;
  } else {
    control = html`<input id=${id} name=${field.name} maxlength="500" required=${required} />`;
  }
  return html`<div class="field"><label for=${id}>${label}</label> ${control}</div>`;
}

function ActionForm({ action, token, customerId, t, onDone }) {
  const [outcome, setOutcome] = useState(null);
  // One idempotency key per intended action: a retry after a failure is the same event.
  const eventId = useRef(crypto.randomUUID());
  const submit = async (event) => {
    event.preventDefault();
    const form = event.target;
    const variables = { customerId, eventId: eventId.current };
    for (const field of action.fields) variables[field.name] = valueOf(field, form.elements[field.name].value);
    setOutcome({ busy: true });
    try {
      const data = await request(token, mutationOf(action), variables);
      const result = data[action.mutation];
      setOutcome({ status: result.status, case: result.case });
      eventId.current = crypto.randomUUID();
      form.reset();
      onDone();
    } catch (e) {
      setOutcome({ error: e.message });
    }
  };
  return html`<form class="action" onSubmit=${submit} aria-label=${t(`action_${action.id}`)}>
    ${action.fields.map((f) => html`<${Field} action=${action} field=${f} t=${t} />`)}
    <button type="submit" disabled=${outcome && outcome.busy}>${t(`action_${action.id}`)}</button>
    <p role="status" class=${outcome && outcome.status ? `outcome ${outcome.status}` : "outcome"}>
      ${outcome && outcome.status && html`<strong>${outcome.status}</strong> ${t(outcome.status)}`}
      ${outcome && outcome.case && html` <span class="tag">${outcome.case.id}</span> <strong class="case-status">${outcome.case.status}</strong>`}
      ${outcome && outcome.error && t("failed", { error: outcome.error })}
    </p>
  </form>`;
}

function Actions({ token, customerId, t, onDone }) {
  const [chosen, setChosen] = useState("note");
  const action = ACTIONS.find((a) => a.id === chosen);
  return html`<section class="actions" aria-labelledby="actions-title">
    <h3 id="actions-title">${t("actions")}</h3>
    <div class="action-choice" role="group" aria-label=${t("actions")}>
      ${ACTIONS.map(
        (a) =>
          html`<button type="button" aria-pressed=${a.id === chosen} onClick=${() => setChosen(a.id)}>
            ${t(`action_${a.id}`)}
          </button>`,
      )}
    </div>
    <${ActionForm} key=${chosen} action=${action} token=${token} customerId=${customerId} t=${t} onDone=${onDone} />
  </section>`;
}

function MergeHistory({ token, roles, customer, t, language, onDone }) {
  const [error, setError] = useState(null);
  const split = async (event, merge) => {
    event.preventDefault();
    const reason = event.target.elements.reason.value.trim();
    try {
      await request(
        token,
        "mutation Split($c: ID!, $m: ID!, $r: String!, $e: ID) { splitMerge(customerId: $c, mergeId: $m, reason: $r, eventId: $e) { eventId status } }",
        { c: customer.id, m: merge.id, r: reason, e: crypto.randomUUID() },
      );
      onDone();
    } catch (e) {
      setError(e.message);
    }
  };
  return html`<section class="merges" aria-labelledby="merges-title">
    <h3 id="merges-title">${t("mergeHistory")}</h3>
    ${customer.mergeHistory.length === 0 && html`<p class="muted">${t("noMerges")}</p>`}
    <ul>
      ${customer.mergeHistory.map(
        (m) => html`<li>
          <strong>${m.rule}</strong> · ${m.status} · ${dateTime(m.at, language)}
          ${m.actor && m.actor.displayName && html` · ${m.actor.displayName}`}
          <div>${m.mergedIds.join(", ")} → ${m.survivorId}</div>
          ${m.reason && html`<div>${t("reason")}: ${m.reason}</div>`}
          <div>${t("evidence")}:
            ${m.evidence.map((e) => html`<span class="tag">${e.identifier && e.identifier.kind} ${e.identifier && e.identifier.value} (${e.customerId})</span> `)}
          </div>
          ${m.status === "done" && can(roles, "merge") &&
          html`<form onSubmit=${(e) => split(e, m)}>
            <label>${t("splitReason")} <input name="reason" required maxlength="500" /></label>
            <button type="submit">${t("split")}</button>
          </form>`}
        </li>`,
      )}
    </ul>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
  </section>`;
}

export function CustomerView({ token, roles, customerId, live, t, language, onMerged }) {
  const [customer, setCustomer] = useState(null);
  const [incoming, setIncoming] = useState(null);
  const [reloads, setReloads] = useState(0);
  const [error, setError] = useState(null);
  const refresh = async () => {
    try {
      const data = await request(token, customerQuery(roles), { id: customerId });
      setCustomer(data.customer);
    } catch (e) {
      setError(e.message);
    }
  };
  useEffect(() => {
    setCustomer(null);
    refresh();
  }, [customerId]);
  useEffect(() => {
    if (!live) return undefined;
    return live.subscribe(LIVE, { id: customerId }, {
      onData: (data) => {
        const update = data.timelineUpdated;
        if (update.mergedInto) return onMerged(update.mergedInto);
        if (update.entry) setIncoming(update.entry);
        refresh();
      },
      onReconnect: () => {
        refresh();
        setReloads((n) => n + 1);
      },
    });
  }, [customerId, live]);
  useEffect(() => {
    const heading = document.getElementById("customer-name");
    if (heading) heading.focus();
  }, [customer && customer.id]);
  if (error) return html`<p role="alert">${t("error", { error })}</p>`;
  if (!customer) return null;
  return html`<div class="customer">
    <div class="side">
      <${Profile} customer=${customer} t=${t} language=${language} />
      ${customer.mergeHistory &&
      html`<${MergeHistory} token=${token} roles=${roles} customer=${customer} t=${t} language=${language} onDone=${refresh} />`}
    </div>
    <div class="middle">
      <${Timeline} token=${token} customer=${customer} incoming=${incoming} reloads=${reloads} t=${t} language=${language} />
    </div>
    ${can(roles, "act") &&
    html`<div class="side">
      <${Actions} token=${token} customerId=${customer.id} t=${t} onDone=${refresh} />
      <${CaseAssist} token=${token} caseId=${customer.openCase && customer.openCase.id} t=${t} />
    </div>`}
  </div>`;
}

/** Search, then the customer found; the privacy view reuses it without live updates. */
export function Desk(props) {
  const { focus, intro, below } = props;
  const [customerId, setCustomerId] = useState(focus ? focus.customerId : null);
  // Bumped to read the customer again from scratch (after an erasure, say).
  const [version, setVersion] = useState(0);
  useEffect(() => {
    if (focus) setCustomerId(focus.customerId);
  }, [focus]);
  return html`<div class="desk">
    ${intro}
    <${Search} ...${props} onFound=${setCustomerId} />
    ${customerId &&
    html`<${CustomerView} ...${props} key=${`${customerId}/${version}`} customerId=${customerId} onMerged=${setCustomerId} />`}
    ${customerId && below && below(customerId, () => setVersion((n) => n + 1))}
  </div>`;
}

export const agentPanel = {
  id: "agent",
  label: "panel_agent",
  roles: ["agent", "supervisor"],
  View: Desk,
};
