// The privacy officer's view: find a customer and see what is held; their audit trail, the
// export (JSON and CSV), the erasure with a confirmation step and its certificate; and for
// the tenant, the audit log and the verification of its hash chain.
import { html, useEffect, useState } from "./vendor/htm-preact.module.js";
import { Desk } from "./agent.js";
import { download } from "./download.js";
import { request } from "./graphql.js";
import { dateTime } from "./i18n.js";

const RECORD = "sequence at subject roles customerId operation fields reason clientAddress";
const TRAIL = `query Trail($id: ID!, $after: String) {
  auditTrail(customerId: $id, first: 20, after: $after) {
    edges { node { ${RECORD} } } pageInfo { hasNextPage endCursor }
  }
}`;
const LOG = `query Log($after: String) {
  auditLog(first: 20, after: $after) { edges { node { ${RECORD} } } pageInfo { hasNextPage endCursor } }
}`;
const VERIFY = "query Verify { verifyAuditChain { intact recordsChecked firstBrokenSequence problem } }";
const EXPORT = `query Export($id: ID!, $reason: String!) {
  exportCustomer(customerId: $id, reason: $reason) {
    customerId exportedAt interactionCount document interactionsCsv
  }
}`;
const ERASE = `mutation Erase($id: ID!, $reason: String!) {
  eraseCustomer(customerId: $id, reason: $reason) {
    id customerIds erasedAt byName reason keyIds suppressedIdentifiers
    counts { contacts contactsByChannel { name count } csatScores cancellationReasons { name count } }
  }
}`;
// What the gateway accepts as a reason (gateway/privacy.py, gateway/erasure.py).
const MIN_REASON = 3;
const MAX_REASON = 500;

/** Audit records, newest first, paged by cursor ("Older"). */
function AuditTable({ token, query, variables, label, t, language }) {
  const [records, setRecords] = useState([]);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const load = (after) =>
    request(token, query, { ...variables, after }).then((d) => {
      const page = d[Object.keys(d)[0]];
      setRecords((old) => [...(after ? old : []), ...page.edges.map((e) => e.node)]);
      setNext(page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null);
    }, (e) => setError(e.message));
  useEffect(() => {
    load(null);
  }, [JSON.stringify(variables)]);
  return html`<div>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    <table aria-label=${label} class="audit">
      <thead>
        <tr><th>#</th><th>${t("auditWhen")}</th><th>${t("auditWho")}</th><th>${t("auditWhat")}</th><th>${t("auditCustomer")}</th><th>${t("auditWhy")}</th><th>${t("auditFrom")}</th></tr>
      </thead>
      <tbody>
        ${records.map(
          (r) => html`<tr class="audit-record">
            <td>${r.sequence}</td>
            <td>${dateTime(r.at, language)}</td>
            <td>${r.subject} <span class="muted">${r.roles.join(", ")}</span></td>
            <td class="operation">${r.operation}${r.fields.length > 0 && html` <span class="muted">${r.fields.join(", ")}</span>`}</td>
            <td>${r.customerId || ""}</td>
            <td>${r.reason || ""}</td>
            <td>${r.clientAddress}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${next && html`<button type="button" onClick=${() => load(next)}>${t("older")}</button>`}
  </div>`;
}

function ReasonField({ label, value, onInput }) {
  return html`<label>
    ${label}
    <input type="text" value=${value} required minlength=${MIN_REASON} maxlength=${MAX_REASON}
      onInput=${(e) => onInput(e.target.value)} />
  </label>`;
}

function Export({ token, customerId, t }) {
  const [reason, setReason] = useState("");
  const [done, setDone] = useState(null);
  const [error, setError] = useState(null);
  const submit = (event) => {
    event.preventDefault();
    setError(null);
    request(token, EXPORT, { id: customerId, reason: reason.trim() }).then(
      (d) => setDone(d.exportCustomer),
      (e) => setError(e.message),
    );
  };
  return html`<form class="export" aria-labelledby="export-title" onSubmit=${submit}>
    <h3 id="export-title">${t("export")}</h3>
    <${ReasonField} label=${t("exportReason")} value=${reason} onInput=${setReason} />
    <button type="submit">${t("exportButton")}</button>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    ${done &&
    html`<p role="status">${t("exported", { count: done.interactionCount })}</p>
      <button type="button" onClick=${() => download(`${done.customerId}.json`, "application/json", done.document)}>
        ${t("downloadJson")}
      </button>
      <button type="button" onClick=${() => download(`${done.customerId}.csv`, "text/csv", done.interactionsCsv)}>
        ${t("downloadCsv")}
      </button>`}
  </form>`;
}

function Certificate({ certificate, t, language }) {
  const c = certificate;
  const named = (list) => list.map((n) => `${n.name}: ${n.count}`).join(", ") || "–";
  return html`<dl class="certificate" aria-label=${t("certificate")}>
    <dt>${t("certificateId")}</dt><dd class="certificate-id">${c.id}</dd>
    <dt>${t("erasedAt")}</dt><dd>${dateTime(c.erasedAt, language)}</dd>
    <dt>${t("erasedBy")}</dt><dd>${c.byName}</dd>
    <dt>${t("erasedCustomers")}</dt><dd>${c.customerIds.join(", ")}</dd>
    <dt>${t("auditWhy")}</dt><dd>${c.reason}</dd>
    <dt>${t("keysDestroyed")}</dt><dd>${c.keyIds.length}</dd>
    <dt>${t("suppressed")}</dt><dd>${c.suppressedIdentifiers}</dd>
    <dt>${t("keptCounts")}</dt>
    <dd>${t("contactsCount", { count: c.counts.contacts })} · ${named(c.counts.contactsByChannel)} · CSAT ${c.counts.csatScores.join(", ") || "–"} · ${named(c.counts.cancellationReasons)}</dd>
  </dl>`;
}

/** Erasure is irreversible: a typed reason, then a second, explicit confirmation. */
function Erase({ token, customerId, t, language, onErased }) {
  const [reason, setReason] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [certificate, setCertificate] = useState(null);
  const [error, setError] = useState(null);
  const ask = (event) => {
    event.preventDefault();
    setConfirming(true);
  };
  const erase = () => {
    setError(null);
    request(token, ERASE, { id: customerId, reason: reason.trim() }).then(
      (d) => {
        setConfirming(false);
        setCertificate(d.eraseCustomer);
        onErased();
      },
      (e) => setError(e.message),
    );
  };
  return html`<form class="erase" aria-labelledby="erase-title" onSubmit=${ask}>
    <h3 id="erase-title">${t("erase")}</h3>
    ${!certificate &&
    html`<${ReasonField} label=${t("eraseReason")} value=${reason} onInput=${(v) => {
        setReason(v);
        setConfirming(false);
      }} />
      <button type="submit" disabled=${confirming}>${t("eraseButton")}</button>`}
    ${confirming &&
    html`<div role="alertdialog" aria-labelledby="erase-confirm" class="confirm">
      <p id="erase-confirm">${t("eraseConfirm", { id: customerId })}</p>
      <button type="button" class="danger" onClick=${erase}>${t("eraseConfirmButton")}</button>
      <button type="button" onClick=${() => setConfirming(false)}>${t("cancel")}</button>
    </div>`}
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    ${certificate &&
    html`<p role="status">${t("erased")}</p>
      <${Certificate} certificate=${certificate} t=${t} language=${language} />`}
  </form>`;
}

function CustomerPrivacy({ token, customerId, t, language, onErased }) {
  const [reads, setReads] = useState(0);
  return html`<div class="privacy-tools">
    <section aria-labelledby="trail-title">
      <h2 id="trail-title">${t("auditTrail")}</h2>
      <${AuditTable} key=${reads} token=${token} query=${TRAIL} variables=${{ id: customerId }}
        label=${t("auditTrail")} t=${t} language=${language} />
      <button type="button" onClick=${() => setReads((n) => n + 1)}>${t("reload")}</button>
    </section>
    <section aria-label=${t("requests")}>
      <${Export} token=${token} customerId=${customerId} t=${t} />
      <${Erase} token=${token} customerId=${customerId} t=${t} language=${language}
        onErased=${() => {
          onErased();
          setReads((n) => n + 1);
        }} />
    </section>
  </div>`;
}

function TenantAudit({ token, t, language }) {
  const [verdict, setVerdict] = useState(null);
  const [error, setError] = useState(null);
  const verify = () =>
    request(token, VERIFY).then((d) => setVerdict(d.verifyAuditChain), (e) => setError(e.message));
  return html`<section aria-labelledby="log-title" class="tenant-audit">
    <h2 id="log-title">${t("auditLog")}</h2>
    <button type="button" onClick=${verify}>${t("verifyChain")}</button>
    ${error && html`<p role="alert">${t("error", { error })}</p>`}
    ${verdict &&
    html`<p role="status" class=${verdict.intact ? "intact" : "broken"}>
      ${verdict.intact
        ? t("chainIntact", { count: verdict.recordsChecked })
        : t("chainBroken", { sequence: verdict.firstBrokenSequence, problem: verdict.problem })}
    </p>`}
    <${AuditTable} token=${token} query=${LOG} variables=${{}} label=${t("auditLog")} t=${t} language=${language} />
  </section>`;
}

function Privacy(props) {
  const { t, token, language } = props;
  const intro = html`<p>${t("privacyIntro")}</p>`;
  const below = (customerId, onErased) =>
    html`<${CustomerPrivacy} token=${token} customerId=${customerId} t=${t} language=${language} onErased=${onErased} />`;
  return html`<div class="privacy">
    <${Desk} ...${props} live=${null} intro=${intro} below=${below} />
    <${TenantAudit} token=${token} t=${t} language=${language} />
  </div>`;
}

export const privacyPanel = {
  id: "privacy",
  label: "panel_privacy",
  roles: ["privacy_officer"],
  View: Privacy,
};
