// What each role may do, as the gateway's permission matrix (gateway/permissions.py) says:
// the console only asks for what the role may read, so no query fails half-way.
const MAY = {
  personal: ["agent", "supervisor", "privacy_officer"],
  search: ["supervisor", "privacy_officer"],
  listCases: ["supervisor", "analyst", "admin"],
  ledger: ["supervisor", "privacy_officer"],
  act: ["agent", "supervisor"],
  merge: ["supervisor"],
  watch: ["agent", "supervisor"],
};

export function can(roles, what) {
  return MAY[what].some((role) => roles.includes(role));
}
