// GraphiQL over this gateway; a token from the console's sign-in (same tab) becomes the
// Authorization header, for queries and for the WebSocket's connection_init.
"use strict";
(function () {
  const url = window.location.href.split("?")[0].split("#")[0];
  const token = window.sessionStorage.getItem("tsunagu.token");
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const ws = new URL(url);
  ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
  const fetcher = GraphiQL.createFetcher({
    url,
    headers,
    subscriptionUrl: ws.toString(),
    wsConnectionParams: headers,
  });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      defaultHeaders: JSON.stringify(headers, null, 2),
      shouldPersistHeaders: false,
    }),
  );
})();
