// The privacy officer's view: find a customer and see what is held (identifiers, merges).
// Audit trail, export and erasure join here when the gateway offers them.
import { html } from "./vendor/htm-preact.module.js";
import { Desk } from "./agent.js";

function Privacy(props) {
  const { t } = props;
  const intro = html`<p>${t("privacyIntro")}</p>
    <p class="muted">${t("comingSoon")}</p>`;
  return html`<${Desk} ...${props} live=${null} intro=${intro} />`;
}

export const privacyPanel = {
  id: "privacy",
  label: "panel_privacy",
  roles: ["privacy_officer"],
  View: Privacy,
};
