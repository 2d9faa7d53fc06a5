// GraphQL over HTTP (bearer header) and over graphql-transport-ws (token in connection_init),
// with reconnection and resubscription after a network drop.
export class GraphQLError extends Error {}

export async function request(token, query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLError(`HTTP ${response.status}`);
  }
  if (body.errors && body.errors.length) {
    throw new GraphQLError(body.errors.map((e) => e.message).join("; "));
  }
  if (!response.ok) throw new GraphQLError(`HTTP ${response.status}`);
  return body.data;
}

const CLOSED_FOR_GOOD = new Set([4401, 4403, 4400]);

/** One WebSocket for every live subscription of the page. */
export class LiveConnection {
  constructor(token, onState) {
    this.token = token;
    this.onState = onState;
    this.subscriptions = new Map();
    this.nextId = 1;
    this.delay = 250;
    this.socket = null;
    this.acknowledged = false;
    this.everAcknowledged = false;
    this.stopped = false;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    const url = new URL("/graphql", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url, "graphql-transport-ws");
    this.socket = socket;
    this.acknowledged = false;
    socket.onopen = () => {
      socket.send(
        JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${this.token}` } }),
      );
    };
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.acknowledged = false;
      if (this.stopped || CLOSED_FOR_GOOD.has(event.code)) {
        this.onState("offline");
        return;
      }
      this.onState("reconnecting");
      // Back off up to 5 s; every subscription is sent again once the server acknowledges.
      window.setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }

  receive(message) {
    if (message.type === "connection_ack") {
      const again = this.everAcknowledged;
      this.everAcknowledged = true;
      this.acknowledged = true;
      this.delay = 250;
      this.onState("live");
      for (const [id, subscription] of this.subscriptions) {
        this.start(id, subscription);
        // What was stored while the connection was down never comes as an update.
        if (again && subscription.onReconnect) subscription.onReconnect();
      }
    } else if (message.type === "ping") {
      this.socket.send(JSON.stringify({ type: "pong" }));
    } else if (message.type === "next") {
      const subscription = this.subscriptions.get(message.id);
      if (subscription && message.payload.data) subscription.onData(message.payload.data);
    } else if (message.type === "error") {
      const subscription = this.subscriptions.get(message.id);
      if (subscription && subscription.onError) subscription.onError(message.payload);
    }
  }

  start(id, subscription) {
    this.socket.send(
      JSON.stringify({
        id,
        type: "subscribe",
        payload: { query: subscription.query, variables: subscription.variables },
      }),
    );
  }

  /** Subscribe; `onReconnect` runs after a drop, to catch up. Returns the unsubscribe. */
  subscribe(query, variables, { onData, onError, onReconnect }) {
    const id = String(this.nextId++);
    const subscription = { query, variables, onData, onError, onReconnect };
    this.subscriptions.set(id, subscription);
    if (this.acknowledged) this.start(id, subscription);
    return () => {
      this.subscriptions.delete(id);
      if (this.acknowledged) this.socket.send(JSON.stringify({ id, type: "complete" }));
    };
  }

  close() {
    this.stopped = true;
    if (this.socket) this.socket.close(1000);
  }
}
