// The long-polling transport against a scripted /poll and /rpc (fetch is
// replaced): subscribe and unsubscribe are answered without /rpc and
// change the waiting poll at once; a refused subscribe leaves the
// subscriptions (on WebSocket too); read positions from the welcome and
// from receipts, and the presence the app was told, go into every poll;
// your removal reported by a poll drops the conversation from them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Duplex, DuplexError, State } from "../static/duplex.js";

const until = async (cond, what) => {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail("timed out waiting for " + what);
};

// fakeHTTP answers /poll and /rpc like the server: the handshake poll gets
// the welcome (or the HTTP error for a bad channel), other polls wait
// until answered by the test or aborted.
function fakeHTTP(t) {
  const h = { polls: [], waiting: [], rpcs: [] };
  const reply = (status, obj) => ({ ok: status === 200, status, json: async () => obj });
  const saved = globalThis.fetch;
  globalThis.fetch = async (url, opts) => {
    const path = new URL(url).pathname;
    const body = JSON.parse(opts.body);
    if (path === "/rpc") {
      h.rpcs.push(body);
      if (body.type === "presence") {
        return reply(200, { frames: [{ type: "result", id: body.id, data: { presence: [{ user: "bob", online: true, last_seen: 5 }] } }] });
      }
      return reply(200, { frames: [{ type: "error", id: body.id, code: "bad_request", message: "needs a session" }] });
    }
    h.polls.push(body);
    for (const ch of Object.keys(body.channels ?? {})) {
      if (ch.startsWith("nope:")) return reply(404, { error: { code: "not_found", message: "unknown namespace nope" } });
    }
    if (Object.keys(body.cursors).length === 0 && body.wait_ms === 0) {
      return reply(200, { frames: [{
        type: "welcome", user: "alice", session: "s",
        conversations: [{ id: "c", kind: "group", last_seq: 3, read_seq: 3, members: ["alice", "bob"], reads: { alice: 3, bob: 1 } }],
      }] });
    }
    return new Promise((resolve, reject) => {
      const w = {
        body,
        answer: (frames) => {
          h.waiting.splice(h.waiting.indexOf(w), 1);
          resolve(reply(200, { frames }));
        },
      };
      h.waiting.push(w);
      opts.signal?.addEventListener("abort", () => {
        h.waiting.splice(h.waiting.indexOf(w), 1);
        reject(Object.assign(new Error("aborted"), { name: "AbortError" }));
      });
    });
  };
  t.after(() => { globalThis.fetch = saved; });
  return h;
}

const connect = async () => {
  const dx = new Duplex({
    token: "t", url: "http://fake", transports: ["longpoll"],
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000,
  });
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  return dx;
};

const lastWait = (h) => h.waiting[h.waiting.length - 1]?.body;

test("long-polling: subscribe and unsubscribe are answered locally and restart the poll", async (t) => {
  const h = fakeHTTP(t);
  const dx = await connect();
  t.after(() => dx.close());
  await until(() => h.waiting.length === 1, "a waiting poll");
  assert.deepEqual(lastWait(h).channels, {});

  const r = await dx.subscribe("news:x", { since: 7 });
  assert.equal(r.type, "result");
  assert.deepEqual(r.data, { channel: "news:x", offset: 7 });
  await until(() => lastWait(h)?.channels["news:x"] === 7, "a poll with the channel");
  assert.equal(h.waiting.length, 1, "the old poll was ended");

  const u = await dx.unsubscribe("news:x");
  assert.deepEqual(u.data, { channel: "news:x", offset: 0 });
  await until(() => lastWait(h) && !("news:x" in lastWait(h).channels), "a poll without the channel");
  assert.equal(h.rpcs.length, 0, "no subscribe went to /rpc");
  assert.equal(dx.state, State.CONNECTED);
});

test("long-polling: a refused subscribe rejects and leaves the subscriptions", async (t) => {
  const h = fakeHTTP(t);
  const dx = await connect();
  t.after(() => dx.close());
  await assert.rejects(dx.subscribe("nope:x"), (err) => err instanceof DuplexError && err.code === "not_found");
  assert.equal(dx.channels.has("nope:x"), false);
  await dx.subscribe("news:ok");
  await until(() => lastWait(h)?.channels["news:ok"] === 0, "a poll with the good channel");
  assert.equal("nope:x" in lastWait(h).channels, false);
  assert.equal(dx.state, State.CONNECTED);
});

test("long-polling: polls carry the read positions of the welcome and of receipts", async (t) => {
  const h = fakeHTTP(t);
  const dx = await connect();
  t.after(() => dx.close());
  await until(() => h.waiting.length === 1, "a waiting poll");
  assert.deepEqual(lastWait(h).reads, { c: { alice: 3, bob: 1 } });
  const seen = [];
  dx.on("receipt", (r) => seen.push(r.seq));
  h.waiting[0].answer([{ type: "receipt", conv: "c", user: "bob", seq: 3 }]);
  await until(() => h.waiting.length === 1 && lastWait(h).reads.c.bob === 3, "the next poll with bob at 3");
  assert.deepEqual(seen, [3]);
  assert.deepEqual(dx.conversations.get("c").reads, { alice: 3, bob: 3 });
});

test("long-polling: polls carry the presence the app was told, so changes between polls come back", async (t) => {
  const h = fakeHTTP(t);
  const dx = await connect();
  t.after(() => dx.close());
  await until(() => h.waiting.length === 1, "a waiting poll");
  assert.deepEqual(lastWait(h).presence, {});
  const r = await dx.presence(["bob"]);
  assert.equal(r.presence[0].online, true);
  h.waiting[0].answer([]);
  await until(() => h.waiting.length === 1 && lastWait(h).presence.bob === true, "a poll showing bob online");
  const seen = [];
  dx.on("presence", (p) => seen.push(p.online));
  h.waiting[0].answer([{ type: "presence", user: "bob", online: false, last_seen: 9 }]);
  await until(() => h.waiting.length === 1 && lastWait(h).presence.bob === false, "a poll showing bob offline");
  assert.deepEqual(seen, [false]);
});

test("long-polling: your removal found by a poll drops the conversation and its cursor", async (t) => {
  const h = fakeHTTP(t);
  const dx = await connect();
  t.after(() => dx.close());
  await until(() => h.waiting.length === 1, "a waiting poll");
  assert.deepEqual(lastWait(h).cursors, { c: 3 });
  const seen = [];
  dx.on("member", (m) => seen.push(m));
  // Someone else's removal changes nothing here; yours (by absent: it
  // happened between two polls) drops the conversation.
  h.waiting[0].answer([
    { type: "member", conv: "c", user: "bob", action: "removed", by: "alice" },
    { type: "member", conv: "c", user: "alice", action: "removed" },
  ]);
  await until(() => h.waiting.length === 1 && !("c" in lastWait(h).cursors), "a poll without the conversation");
  assert.deepEqual(lastWait(h).cursors, {});
  assert.deepEqual(lastWait(h).reads, {});
  assert.equal(dx.conversations.has("c"), false);
  assert.equal(dx.resume.seq("c"), undefined);
  assert.deepEqual(seen.map((m) => m.user), ["bob", "alice"]);
});

test("a subscribe refused over WebSocket is dropped from the subscriptions", async (t) => {
  const requests = [];
  class RefusingWS {
    name = "websocket";
    constructor(base, token, hooks) {
      this.hooks = hooks;
    }
    async open() {
      queueMicrotask(() => this.hooks.frame({ type: "welcome", user: "alice", session: "s", conversations: [] }));
    }
    request(f) {
      requests.push(f);
      queueMicrotask(() => this.hooks.frame(f.channel.startsWith("nope:")
        ? { type: "error", id: f.id, code: "not_found", message: "unknown namespace" }
        : { type: "result", id: f.id, data: { channel: f.channel, offset: 0 } }));
      return true;
    }
    close() {}
  }
  const dx = new Duplex({
    token: "t", url: "http://fake", transports: ["websocket"], transportClasses: { websocket: RefusingWS },
    backoff: { base: 1, cap: 5 }, heartbeatMs: 60000, heartbeatTimeoutMs: 60000,
  });
  t.after(() => dx.close());
  dx.connect();
  await until(() => dx.state === State.CONNECTED, "connected");
  await assert.rejects(dx.subscribe("nope:x"), (err) => err instanceof DuplexError && err.code === "not_found");
  await dx.subscribe("news:ok");
  assert.deepEqual([...dx.channels.keys()], ["news:ok"]);
});
