// The Duplex client end to end against a scripted in-memory server: it
// reconnects after a slow-consumer close, resumes with sync, shows every
// message once and in order, and retransmits queued sends with their ids.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Duplex, DuplexError, State, TransportError } from "../static/duplex.js";

// FakeServer keeps one conversation's log and answers duplex.v1 requests
// the way the server does, with idempotent sends.
class FakeServer {
  constructor() {
    this.log = []; // messages of conv "c"
    this.byClientId = new Map();
    this.transports = [];
    this.refuseNext = 0;
  }
  append(sender, body, clientMsgId) {
    if (this.byClientId.has(clientMsgId)) return { msg: this.byClientId.get(clientMsgId), dup: true };
    const msg = { type: "message", conv: "c", seq: this.log.length + 1, sender, body, client_msg_id: clientMsgId, ts: Date.now() };
    this.log.push(msg);
    this.byClientId.set(clientMsgId, msg);
    return { msg, dup: false };
  }
  transportClass() {
    const server = this;
    return class {
      name = "websocket";
      constructor(base, token, hooks) {
        this.hooks = hooks;
        this.open_ = false;
      }
      async open() {
        if (server.refuseNext > 0) {
          server.refuseNext--;
          const e = new Error("refused");
          e.code = 1006;
          throw e;
        }
        this.open_ = true;
        server.transports.push(this);
        queueMicrotask(() => this.hooks.frame({
          type: "welcome", user: "alice", session: "s" + server.transports.length,
          conversations: [{ id: "c", kind: "direct", last_seq: server.log.length }],
        }));
      }
      request(f) {
        if (!this.open_) return false;
        queueMicrotask(() => this.#answer(f));
        return true;
      }
      #answer(f) {
        if (!this.open_) return;
        if (f.type === "send") {
          const { msg, dup } = server.append("alice", f.body, f.client_msg_id);
          this.hooks.frame({ type: "ack", id: f.id, conv: "c", seq: msg.seq, client_msg_id: f.client_msg_id, ts: msg.ts, duplicate: dup });
        } else if (f.type === "sync") {
          for (const m of server.log.filter((m) => m.seq > f.after)) this.hooks.frame(m);
          this.hooks.frame({ type: "sync.end", id: f.id, conv: "c", seq: server.log.length, more: false });
        } else {
          this.hooks.frame({ type: "result", id: f.id, data: {} });
        }
      }
      push(m) {
        if (this.open_) this.hooks.frame(m);
      }
      drop(code) {
        this.open_ = false;
        this.hooks.closed(code, "test");
      }
      close() {
        this.open_ = false;
      }
    };
  }
}

const until = async (cond, what) => {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail("timed out waiting for " + what);
};

test("reconnect after a slow-consumer close resumes without loss or duplicates", async () => {
  const server = new FakeServer();
  server.append("bob", "before", "b0");
  const dx = new Duplex({
    token: "t", url: "http://fake", transports: ["websocket"],
    transportClasses: { websocket: server.transportClass() },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000,
  });
  const seen = [];
  const states = [];
  dx.on("message", (m) => seen.push(m.seq));
  dx.on("state", (s) => states.push(s.state));
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");

  // A live message, then the server drops us as a slow consumer while bob
  // keeps writing.
  const first = server.append("bob", "live", "b1").msg;
  server.transports[0].push(first);
  server.transports[0].drop(4009);
  server.append("bob", "missed 1", "b2");
  server.append("bob", "missed 2", "b3");
  server.refuseNext = 2; // the network is down for two attempts

  // Sent while disconnected: queued and retransmitted with the same id.
  const ack = dx.send("c", "from alice while offline");
  await until(() => dx.state === State.CONNECTED && server.transports.length === 2, "reconnected");
  const a = await ack;
  assert.equal(a.seq, 5);
  await until(() => seen.length === 4, "all messages");
  assert.deepEqual(seen, [2, 3, 4, 5], "every message after the welcome, once, in order");
  assert.ok(states.includes(State.RECONNECTING));

  // The same message replayed by the server (e.g. a duplicate delivery)
  // is not shown twice.
  server.transports[1].push(server.log[3]);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, [2, 3, 4, 5]);
  dx.close();
  assert.equal(dx.state, State.CLOSED);
});

test("an auth close stops reconnecting", async () => {
  const server = new FakeServer();
  const dx = new Duplex({
    token: "t", url: "http://fake", transports: ["websocket"],
    transportClasses: { websocket: server.transportClass() },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000,
  });
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  server.transports[0].drop(4000);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(dx.state, State.CLOSED);
  assert.equal(server.transports.length, 1, "no reconnect after 4000");
});

test("a failing transport falls back to the next one", async () => {
  const ws = new FakeServer();
  ws.refuseNext = 1000; // WebSocket is blocked
  const sse = new FakeServer();
  const SSE = sse.transportClass();
  const dx = new Duplex({
    token: "t", url: "http://fake", transports: ["websocket", "sse"],
    transportClasses: { websocket: ws.transportClass(), sse: class extends SSE { name = "sse"; } },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000, upgradeProbeMs: 60000,
  });
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  assert.equal(dx.transport.name, "sse");
  const a = await dx.send("c", "over sse");
  assert.equal(a.seq, 1);
  dx.close();
});

test("a welcome delivered from inside open() (SSE, long-polling) resumes through that transport", async (t) => {
  const server = new FakeServer();
  server.append("bob", "before", "b0");
  const Base = server.transportClass();
  // Like SSE and long-polling: the welcome is handled before open() returns.
  class Eager extends Base {
    name = "sse";
    async open() {
      await super.open();
      await new Promise((r) => setTimeout(r, 1)); // the queued welcome runs first
    }
  }
  const dx = new Duplex({
    token: "t", url: "http://fake", transports: ["sse"],
    transportClasses: { sse: Eager },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000,
  });
  t.after(() => dx.close()); // a failed assertion must not leave timers running
  const seen = [];
  const connected = [];
  dx.on("message", (m) => seen.push(m.seq));
  dx.on("state", (s) => s.state === State.CONNECTED && connected.push(s.transport));
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  server.transports[0].drop(1006);
  server.append("bob", "missed 1", "b1");
  server.append("bob", "missed 2", "b2");
  // Nothing else happens: only the resume sync started by the welcome can
  // bring the missed messages.
  await until(() => seen.length === 2, "the missed messages");
  assert.deepEqual(seen, [2, 3]);
  assert.deepEqual(connected, ["sse", "sse"], "the connected state names the transport");
});

test("on a fallback, the transports preferred to the current one are probed again", async (t) => {
  const run = async (transports) => {
    const ws = new FakeServer();
    ws.refuseNext = 1; // blocked for the first attempt only
    const sse = new FakeServer();
    sse.refuseNext = transports.includes("longpoll") ? 1000 : 0;
    const lp = new FakeServer();
    const named = (server, name) => class extends server.transportClass() { name = name; };
    let probes = 0;
    const WS = ws.transportClass();
    const dx = new Duplex({
      token: "t", url: "http://fake", transports,
      transportClasses: {
        websocket: class extends WS { constructor(...a) { super(...a); probes++; } },
        sse: named(sse, "sse"), longpoll: named(lp, "longpoll"),
      },
      backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000, upgradeProbeMs: 5,
    });
    t.after(() => dx.close());
    dx.connect();
    await until(() => dx.state === State.CONNECTED, "connected");
    return { dx, probes: () => probes };
  };
  // Preferred and blocked once: the probe finds it working and switches.
  const up = await run(["websocket", "sse"]);
  await until(() => up.dx.transport?.name === "websocket" && up.dx.state === State.CONNECTED, "back on websocket");
  // Not offered by the server: never tried, however long on long-polling
  // (SSE, preferred but refused for good, is probed instead).
  const none = await run(["sse", "longpoll"]);
  assert.equal(none.dx.transport.name, "longpoll");
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(none.probes(), 0, "no WebSocket probe when WebSocket is not among the transports");
  assert.equal(none.dx.transport.name, "longpoll");
});

test("a page that fell back to long-polling while SSE was refused goes back to SSE", async (t) => {
  const sse = new FakeServer();
  sse.refuseNext = 1; // refused once, as while the server restarts
  const lp = new FakeServer();
  const named = (server, name) => class extends server.transportClass() { name = name; };
  const dx = new Duplex({
    token: "t", url: "http://fake", transports: ["sse", "longpoll"],
    transportClasses: { sse: named(sse, "sse"), longpoll: named(lp, "longpoll") },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000, upgradeProbeMs: 5,
  });
  t.after(() => dx.close());
  const connected = [];
  dx.on("state", (s) => s.state === State.CONNECTED && connected.push(s.transport));
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  assert.equal(dx.transport.name, "longpoll");
  await until(() => dx.transport?.name === "sse" && dx.state === State.CONNECTED, "back on sse");
  assert.deepEqual(connected, ["longpoll", "sse"]);
  const a = await dx.send("c", "over sse again");
  assert.equal(a.seq, 1);
});

test("sends the server refuses fail once; transport failures are retried", { timeout: 10000 }, async (t) => {
  const server = new FakeServer();
  const Base = server.transportClass();
  let attempts = 0;
  // Like SSE and long-polling, requests go out as HTTP POSTs that can fail
  // on their own: the first answer is a proxy's 502, then the server's
  // too_large for the marked body.
  class RPC extends Base {
    name = "sse";
    request(f) {
      if (f.type !== "send") return super.request(f);
      attempts++;
      queueMicrotask(() => {
        if (attempts === 1) this.hooks.requestFailed(f, new TransportError("rpc: HTTP 502", 0, undefined));
        else if (f.body === "refused") this.hooks.requestFailed(f, new TransportError("body too large", 0, "too_large"));
        else super.request(f);
      });
      return true;
    }
  }
  const dx = new Duplex({
    token: "t", url: "http://fake", transports: ["sse"], transportClasses: { sse: RPC },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000,
  });
  t.after(() => dx.close());
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  const ok = await dx.send("c", "fine after a retry");
  assert.equal(ok.seq, 1);
  assert.equal(attempts, 2, "one retry after the 502");
  await assert.rejects(dx.send("c", "refused"), (err) => err instanceof DuplexError && err.code === "too_large");
  assert.equal(attempts, 3, "a refused send is not retried");
  assert.equal(dx.outgoing.size, 0);
  // A frame over the server's limit is refused without being sent (over
  // WebSocket it would close the connection with 1009, again and again).
  await assert.rejects(dx.send("c", "x".repeat(70000)), (err) => err.code === "too_large");
  assert.equal(attempts, 3);
  assert.equal(dx.state, State.CONNECTED);
});

test("after 4001 a fresh token is fetched, and a failing getToken is retried", { timeout: 10000 }, async (t) => {
  const server = new FakeServer();
  const tokens = [];
  const Base = server.transportClass();
  class Recording extends Base {
    constructor(base, token, hooks) {
      super(base, token, hooks);
      tokens.push(token);
    }
  }
  let calls = 0;
  const dx = new Duplex({
    token: "old", url: "http://fake", transports: ["websocket"], transportClasses: { websocket: Recording },
    getToken: async () => {
      if (++calls === 1) throw new Error("auth service down");
      return "fresh";
    },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000,
  });
  t.after(() => dx.close());
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  server.transports[0].drop(4001);
  await until(() => dx.state === State.CONNECTED && server.transports.length === 2, "reconnected with a fresh token");
  assert.equal(calls, 2, "getToken failed once, then was asked again");
  assert.deepEqual(tokens, ["old", "fresh"]);
});

test("a welcome drops the conversations it does not list, and their saved cursors", async (t) => {
  let convs = [{ id: "a", kind: "direct", last_seq: 3 }, { id: "b", kind: "group", last_seq: 1 }];
  const opened = [];
  class ScriptedWS {
    name = "websocket";
    constructor(base, token, hooks) {
      this.hooks = hooks;
    }
    async open() {
      opened.push(this);
      const conversations = convs;
      queueMicrotask(() => this.hooks.frame({ type: "welcome", user: "alice", session: "s", conversations }));
    }
    request(f) {
      queueMicrotask(() => this.hooks.frame({ type: "result", id: f.id, data: {} }));
      return true;
    }
    close() {}
  }
  const dx = new Duplex({
    token: "t", url: "http://fake", seqs: { a: 3, b: 1, gone: 7 },
    transports: ["websocket"], transportClasses: { websocket: ScriptedWS },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000,
  });
  t.after(() => dx.close());
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  assert.deepEqual([...dx.conversations.keys()].sort(), ["a", "b"]);
  assert.deepEqual(dx.resume.snapshot(), { a: 3, b: 1 }, "the saved cursor of a conversation the welcome does not list is dropped");

  // Removed from b while disconnected: the next welcome does not list it.
  convs = [convs[0]];
  opened[0].hooks.closed(1006, "test");
  await until(() => opened.length === 2 && dx.state === State.CONNECTED, "reconnected");
  assert.deepEqual([...dx.conversations.keys()], ["a"]);
  assert.deepEqual(dx.resume.snapshot(), { a: 3 });
});
