// The console's panels, in navigation order: a panel is one module registered here, shown to
// the roles it names. Insights (supervisor) and privacy views grow inside their own modules.
import { agentPanel } from "./agent.js";
import { privacyPanel } from "./privacy.js";
import { supervisorPanel } from "./supervisor.js";

export const PANELS = [agentPanel, supervisorPanel, privacyPanel];

export function panelsFor(roles) {
  return PANELS.filter((panel) => panel.roles.some((role) => roles.includes(role)));
}
