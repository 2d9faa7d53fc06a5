// The privacy officer's view: find a customer and see what is held (identifiers, merges).
// Audit trail, export and erasure join here when the gateway offers them.
import { html, useState } from "./vendor/htm-preact.module.js";
import { CustomerView, Search } from "./agent.js";

function Privacy({ token, roles, t, language }) {
  const [customerId, setCustomerId] = useState(null);
  return html`<div class="desk">
    <p>${t("privacyIntro")}</p>
    <p class="muted">${t("comingSoon")}</p>
    <${Search} token=${token} roles=${roles} t=${t} onFound=${setCustomerId} />
    ${customerId &&
    html`<${CustomerView} token=${token} roles=${roles} customerId=${customerId} live=${null}
      t=${t} language=${language} onMerged=${setCustomerId} />`}
  </div>`;
}

export const privacyPanel = {
  id: "privacy",
  label: "panel_privacy",
  roles: ["privacy_officer"],
  View: Privacy,
};
