// Unit tests of the JavaScript client's logic: reconnect schedule, close
// code handling, resume bookkeeping and the outgoing queue. Run with
// `node --test web/test/` (from .ci/run).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  backoffDelay, closeAction, minRetryDelay, OutgoingQueue, ResumeTracker, Emitter, newClientMsgId, Duplex,
} from "../static/duplex.js";

test("backoff is full jitter under an exponential ceiling", () => {
  const base = 500, cap = 30000;
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = Math.min(cap, base * 2 ** attempt);
    assert.equal(backoffDelay(attempt, { base, cap, random: () => 0 }), 0);
    assert.equal(backoffDelay(attempt, { base, cap, random: () => 0.999999 }), Math.floor(0.999999 * ceiling));
    const d = backoffDelay(attempt, { base, cap });
    assert.ok(d >= 0 && d < ceiling, `attempt ${attempt}: ${d} not in [0, ${ceiling})`);
  }
  // Huge attempt counts stay at the cap instead of overflowing.
  assert.equal(backoffDelay(1e6, { base, cap, random: () => 0.5 }), cap / 2);
});

test("close codes decide whether to reconnect", () => {
  const cases = [
    [1000, "retry"], [1001, "retry"], [1006, "retry"], [1011, "retry"], [4008, "retry"], [4009, "retry"],
    [4000, "stop"], [4010, "stop"], [4011, "stop"], [1008, "stop"], [1002, "stop"],
    [4001, "refresh"],
  ];
  for (const [code, want] of cases) assert.equal(closeAction(code), want, `code ${code}`);
  assert.ok(minRetryDelay(4008) >= 1000, "rate limited clients wait before coming back");
  assert.equal(minRetryDelay(4009), 0);
});

test("resume: fresh conversations start at last_seq, known ones sync from what is held", () => {
  const r = new ResumeTracker();
  r.restore({ a: 5 });
  const syncs = r.welcome([{ id: "a", last_seq: 9 }, { id: "b", last_seq: 3 }, { id: "c", last_seq: 0 }]);
  assert.deepEqual(syncs, [{ conv: "a", after: 5 }]);
  assert.equal(r.seq("b"), 3);
  // Nothing to sync when up to date.
  assert.deepEqual(r.welcome([{ id: "a", last_seq: 5 }]), []);
});

test("resume: duplicates are dropped, gaps are held until filled, order is kept", () => {
  const r = new ResumeTracker();
  r.welcome([{ id: "a", last_seq: 2 }]);
  const m = (seq) => ({ conv: "a", seq, body: "m" + seq });
  assert.deepEqual(r.accept(m(2)).deliver, [], "already held");
  let out = r.accept(m(5));
  assert.deepEqual(out.deliver, []);
  assert.equal(out.gapAfter, 2, "a gap asks for a sync after the held seq");
  assert.ok(r.hasGap("a"));
  out = r.accept(m(3));
  assert.deepEqual(out.deliver.map((x) => x.seq), [3]);
  out = r.accept(m(4));
  assert.deepEqual(out.deliver.map((x) => x.seq), [4, 5], "the held-back message follows in order");
  assert.ok(!r.hasGap("a"));
  assert.deepEqual(r.accept(m(4)).deliver, [], "a sync replaying seen messages shows nothing twice");
  assert.equal(r.seq("a"), 5);
  assert.deepEqual(r.snapshot(), { a: 5 });
});

test("resume: a conversation created after the welcome starts empty", () => {
  const r = new ResumeTracker();
  r.track("n", 0);
  assert.deepEqual(r.accept({ conv: "n", seq: 2 }).gapAfter, 0);
  assert.deepEqual(r.accept({ conv: "n", seq: 1 }).deliver.map((x) => x.seq), [1, 2]);
});

test("outgoing queue keeps ids across reconnects and sends in order", () => {
  const q = new OutgoingQueue(3);
  const a = q.add({ conv: "c", body: "1", clientMsgId: "id1" });
  q.add({ conv: "c", body: "2", clientMsgId: "id2" });
  q.add({ conv: "d", body: "3", clientMsgId: "id3" });
  assert.throws(() => q.add({ conv: "c", body: "4", clientMsgId: "id4" }), /full/);
  assert.equal(a.clientMsgId, "id1");
  q.markSent("id1");
  q.markSent("id2");
  assert.deepEqual(q.unsent().map((i) => i.clientMsgId), ["id3"]);
  q.resetInFlight(); // connection dropped before the acks
  assert.deepEqual(q.unsent().map((i) => i.clientMsgId), ["id1", "id2", "id3"], "retransmitted with the same ids, in order");
  assert.equal(q.take("id2").body, "2");
  assert.equal(q.take("id2"), undefined, "an ack for an unknown id is ignored");
  assert.deepEqual(q.pending("c").map((i) => i.clientMsgId), ["id1"]);
  assert.equal(q.size, 2);
});

test("emitter isolates handlers and unsubscribes", async () => {
  const e = new Emitter();
  const got = [];
  const off = e.on("x", (v) => got.push(v));
  e.emit("x", 1);
  off();
  e.emit("x", 2);
  assert.deepEqual(got, [1]);
});

test("client message ids are unique, time-ordered UUIDv7s", () => {
  const n = 10000; // more than the counter holds in one millisecond
  const ids = Array.from({ length: n }, newClientMsgId);
  assert.equal(new Set(ids).size, n);
  for (let i = 0; i < n; i++) {
    assert.match(ids[i], /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    if (i > 0) assert.ok(ids[i] > ids[i - 1], `${ids[i]} after ${ids[i - 1]}`);
  }
  const ms = parseInt(ids[0].replace(/-/g, "").slice(0, 12), 16);
  assert.ok(Math.abs(ms - Date.now()) < 60000, "the first 48 bits are the time in ms");
});

test("unknown transport names are refused up front", () => {
  assert.throws(() => new Duplex({ token: "t", url: "http://x", transports: ["websocket", "carrier-pigeon"] }), /unknown transport carrier-pigeon/);
});
