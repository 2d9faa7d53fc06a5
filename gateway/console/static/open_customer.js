// The button that opens a listed case's or figure's customer on the agent desk; absent for
// roles that may not read the customer (openCustomer is null for them).
import { html } from "./vendor/htm-preact.module.js";

export function OpenCustomer({ openCustomer, customerId, t }) {
  if (!openCustomer) return null;
  return html`<button type="button" onClick=${() => openCustomer("agent", customerId)}>
    ${t("openCustomer")}
  </button>`;
}
