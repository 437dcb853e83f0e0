// duplex.js: the duplex.v1 client for browsers (and any runtime with fetch).
// A plain ES module with no dependencies and no build step; the server
// serves it at /duplex.js, with TypeScript declarations at /duplex.d.ts.
//
//   import { Duplex } from "/duplex.js";
//   const dx = new Duplex({ token });
//   dx.on("message", (m) => console.log(m.sender, m.body));
//   dx.connect();
//   await dx.send(convId, "hello");
//
// What it does for the application: reconnects with exponential backoff and
// full jitter, honouring the server's close codes; resumes every
// conversation with `sync` from the last sequence number it holds, so no
// message is lost or shown twice; queues sends while offline (each keeps its
// client message id, so the server's idempotency makes retries safe);
// notices dead connections with an application-level heartbeat; and falls
// back from WebSocket to Server-Sent Events to long-polling, trying
// WebSocket again later. See docs/client-js.md.

export const PROTOCOL = "duplex.v1";

/** Connection states reported by the "state" event. */
export const State = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
  CLOSED: "closed",
});

/**
 * What to do after the server closed the connection with `code`:
 * "retry" (reconnect with backoff, then sync), "refresh" (get a new token,
 * then reconnect) or "stop" (do not reconnect automatically).
 */
export function closeAction(code) {
  switch (code) {
    case 4000: // credentials rejected
    case 4010: // too many connections: another device must go first
    case 4011: // session revoked
    case 1008: // policy violation: retrying the same thing will not help
    case 1002: // protocol error: a client bug
    case 1003:
    case 1007:
      return "stop";
    case 4001: // token expired
      return "refresh";
    default: // 1000, 1001, 1006, 1011, 1012, 1013, 4008, 4009, network drops
      return "retry";
  }
}

/** Smallest delay before retrying after `code`, on top of the backoff. */
export function minRetryDelay(code) {
  return code === 4008 ? 5000 : 0; // rate limited: do not come straight back
}

/**
 * Backoff delay for the given attempt (0-based): exponential with full
 * jitter, i.e. uniform in [0, min(cap, base * 2^attempt)).
 */
export function backoffDelay(attempt, { base = 500, cap = 30000, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** A small event emitter: on() returns a function that unsubscribes. */
export class Emitter {
  #handlers = new Map();
  on(type, fn) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }
  off(type, fn) {
    this.#handlers.get(type)?.delete(fn);
  }
  emit(type, value) {
    for (const fn of [...(this.#handlers.get(type) ?? [])]) {
      try {
        fn(value);
      } catch (err) {
        queueMicrotask(() => { throw err; }); // report, but never break the client
      }
    }
  }
}

const idClock = { ms: 0, seq: 0 };

/**
 * A fresh client message id, stable across retries of one send: a UUID
 * version 7 (RFC 9562), 48 bits of Unix milliseconds, a 12-bit counter that
 * keeps this page's ids increasing within a millisecond, and 62 random bits.
 * Ids that grow with time are cheaper for the server to index than random
 * ones (they land at the end of its client-id index, in a page it wrote
 * recently).
 */
export function newClientMsgId() {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  const now = Date.now();
  if (now > idClock.ms) {
    idClock.ms = now;
    idClock.seq = ((b[6] << 8) | b[7]) & 0x07ff; // room to count up
  } else if (idClock.seq < 0x0fff) {
    idClock.seq++;
  } else {
    idClock.ms++; // 4,096 ids in one millisecond: borrow the next one
    idClock.seq = 0;
  }
  let ms = idClock.ms;
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = 0x70 | (idClock.seq >> 8);
  b[7] = idClock.seq & 0xff;
  b[8] = 0x80 | (b[8] & 0x3f);
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * OutgoingQueue holds sends until the server acknowledges them. Items keep
 * their client message id for life, so retransmitting after a reconnect is
 * safe: the server returns the original acknowledgement.
 */
export class OutgoingQueue {
  #items = [];
  constructor(limit = 1000) {
    this.limit = limit;
  }
  /** Adds a send; throws when the queue is full (the app should back off). */
  add(item) {
    if (this.#items.length >= this.limit) throw new Error("duplex: outgoing queue is full");
    const stored = { ...item, inFlight: false };
    this.#items.push(stored);
    return stored;
  }
  /** Items not yet transmitted on the current connection, in order. */
  unsent() {
    return this.#items.filter((i) => !i.inFlight);
  }
  markSent(clientMsgId) {
    const i = this.#find(clientMsgId);
    if (i) i.inFlight = true;
  }
  /** The connection dropped: everything unacknowledged goes out again. */
  resetInFlight() {
    for (const i of this.#items) i.inFlight = false;
  }
  /** Removes and returns the item with this id, if any. */
  take(clientMsgId) {
    const k = this.#items.findIndex((i) => i.clientMsgId === clientMsgId);
    return k < 0 ? undefined : this.#items.splice(k, 1)[0];
  }
  pending(conv) {
    return this.#items.filter((i) => conv === undefined || i.conv === conv);
  }
  get size() {
    return this.#items.length;
  }
  #find(id) {
    return this.#items.find((i) => i.clientMsgId === id);
  }
}

/**
 * ResumeTracker keeps, per conversation, the highest sequence number
 * delivered to the application with nothing missing before it. It decides
 * for each incoming message whether to deliver it, drop it as a duplicate,
 * or hold it until a sync fills the gap before it.
 */
export class ResumeTracker {
  #held = new Map(); // conv -> highest contiguous seq delivered
  #waiting = new Map(); // conv -> Map(seq -> message) held back by a gap
  constructor(limit = 10000) {
    this.limit = limit;
  }
  /** Restores cursors saved by the application (e.g. in localStorage). */
  restore(seqs) {
    for (const [conv, seq] of Object.entries(seqs ?? {})) this.#held.set(conv, seq);
  }
  /** Current cursors, for the application to save. */
  snapshot() {
    return Object.fromEntries(this.#held);
  }
  seq(conv) {
    return this.#held.get(conv);
  }
  /**
   * Called with the conversations of a welcome frame. Returns the syncs to
   * run: [{conv, after}]. A conversation never seen before starts at its
   * last_seq (the app loads history on demand); one seen before resumes
   * from the seq it holds. The welcome lists every conversation of the
   * user: one it does not list the user was removed from, and is forgotten.
   */
  welcome(conversations) {
    const listed = new Set(conversations.map((c) => c.id));
    for (const conv of [...this.#held.keys()]) if (!listed.has(conv)) this.forget(conv);
    const syncs = [];
    for (const c of conversations) {
      const held = this.#held.get(c.id);
      if (held === undefined) this.#held.set(c.id, c.last_seq);
      else if (c.last_seq > held) syncs.push({ conv: c.id, after: held });
    }
    return syncs;
  }
  /** A conversation that appeared after the welcome starts empty. */
  track(conv, seq = 0) {
    if (!this.#held.has(conv)) this.#held.set(conv, seq);
  }
  /**
   * Accepts one message. Returns {deliver: [messages in order], gapAfter}
   * where gapAfter is set when a sync from that seq is needed.
   */
  accept(m) {
    let held = this.#held.get(m.conv);
    if (held === undefined) {
      held = m.seq - 1; // unknown conversation: start where it is
      this.#held.set(m.conv, held);
    }
    if (m.seq <= held) return { deliver: [], gapAfter: undefined };
    if (m.seq > held + 1) {
      let w = this.#waiting.get(m.conv);
      if (!w) this.#waiting.set(m.conv, (w = new Map()));
      if (w.size < this.limit) w.set(m.seq, m);
      return { deliver: [], gapAfter: held };
    }
    const deliver = [m];
    held = m.seq;
    const w = this.#waiting.get(m.conv);
    while (w?.has(held + 1)) {
      deliver.push(w.get(held + 1));
      w.delete(held + 1);
      held++;
    }
    if (w) for (const s of w.keys()) if (s <= held) w.delete(s);
    if (w?.size === 0) this.#waiting.delete(m.conv);
    this.#held.set(m.conv, held);
    return { deliver, gapAfter: undefined };
  }
  /** Forgets a conversation the user left or was removed from. */
  forget(conv) {
    this.#held.delete(conv);
    this.#waiting.delete(conv);
  }
  /** Whether messages are held back waiting for a gap to fill. */
  hasGap(conv) {
    return (this.#waiting.get(conv)?.size ?? 0) > 0;
  }
}

function httpBase(url) {
  const u = new URL(url, globalThis.location?.href);
  u.protocol = u.protocol === "wss:" ? "https:" : u.protocol === "ws:" ? "http:" : u.protocol;
  u.pathname = u.pathname.replace(/\/(ws)?$/, "");
  u.search = "";
  return u.toString().replace(/\/$/, "");
}

/** WebSocket transport: frames both ways on one connection. */
class WebSocketTransport {
  name = "websocket";
  constructor(base, token, hooks) {
    this.hooks = hooks;
    const u = new URL(base + "/ws");
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("access_token", token);
    this.url = u.toString();
  }
  open() {
    return new Promise((resolve, reject) => {
      let opened = false;
      const sock = new WebSocket(this.url, PROTOCOL);
      this.sock = sock;
      sock.onopen = () => {
        opened = true;
        resolve();
      };
      sock.onmessage = (e) => {
        if (typeof e.data === "string") this.hooks.frame(e.data);
      };
      sock.onclose = (e) => {
        if (!opened) reject(new TransportError("websocket: could not connect", e.code));
        else this.hooks.closed(e.code, e.reason);
      };
      sock.onerror = () => {}; // onclose follows with the code
    });
  }
  request(frame) {
    if (this.sock?.readyState !== 1) return false;
    this.sock.send(JSON.stringify(frame));
    return true;
  }
  close() {
    if (this.sock) {
      this.sock.onclose = null;
      this.sock.onmessage = null;
      try { this.sock.close(1000); } catch { /* already closed */ }
    }
  }
}

/** The UTF-8 size of a frame as sent. */
function frameBytes(frame) {
  return new TextEncoder().encode(JSON.stringify(frame)).length;
}

/** POST /rpc: one request, the frames a WebSocket session would reply. */
async function rpc(base, token, frame, session, signal) {
  const u = new URL(base + "/rpc");
  if (session) u.searchParams.set("session", session);
  const res = await fetch(u, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
    body: JSON.stringify(frame),
    signal,
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    // errorCode is the protocol's error code when the server gave one (a
    // proxy's 502 has none: that is a transport failure, retried).
    const code = body?.error?.code;
    throw new TransportError(body?.error?.message ?? `rpc: HTTP ${res.status}`, res.status === 401 ? 4000 : 0, code);
  }
  return body.frames ?? [];
}

/** Server-Sent Events down, HTTP POST up. */
class SSETransport {
  name = "sse";
  constructor(base, token, hooks) {
    Object.assign(this, { base, token, hooks });
  }
  open() {
    return new Promise((resolve, reject) => {
      const u = new URL(this.base + "/sse");
      u.searchParams.set("access_token", this.token);
      const es = new EventSource(u);
      this.es = es;
      let opened = false;
      es.onmessage = (e) => {
        if (!opened) {
          opened = true;
          resolve();
        }
        try {
          const f = JSON.parse(e.data);
          if (f.type === "welcome") this.session = f.session;
        } catch { /* the client reports it */ }
        this.hooks.frame(e.data);
      };
      es.addEventListener("ping", () => this.hooks.alive());
      es.addEventListener("close", (e) => {
        let info = {};
        try { info = JSON.parse(e.data); } catch { /* keep defaults */ }
        this.close();
        this.hooks.closed(info.code ?? 1006, info.reason ?? "");
      });
      es.onerror = () => {
        // EventSource would retry on its own; the client owns reconnects.
        this.close();
        if (!opened) reject(new TransportError("sse: could not connect", 1006));
        else this.hooks.closed(1006, "sse stream ended");
      };
    });
  }
  request(frame) {
    rpc(this.base, this.token, frame, this.session).then(
      (frames) => frames.forEach((f) => this.hooks.frame(f)),
      (err) => this.hooks.requestFailed(frame, err),
    );
    return true;
  }
  close() {
    this.es?.close();
    this.es = undefined;
  }
}

/**
 * Long-polling: POST /poll waits for events; requests go to /rpc. The poll
 * carries the subscriptions (there is no stream for subscribe to act on),
 * so subscribe and unsubscribe are answered here: a subscribe is checked by
 * a handshake poll naming only that channel (the server refuses a bad one
 * with the error it would give a subscribe), then joins the channels of
 * the polls; either one restarts the waiting poll so the change applies at
 * once.
 */
class LongPollTransport {
  name = "longpoll";
  constructor(base, token, hooks) {
    Object.assign(this, { base, token, hooks });
    this.abort = new AbortController();
    this.first = true;
    this.subscribed = new Set(); // channels accepted by the server on this transport
  }
  async open() {
    await this.#poll(); // the first poll returns the welcome frame at once
    this.#loop();
  }
  #channels() {
    const all = this.hooks.channels();
    return Object.fromEntries(Object.entries(all).filter(([ch]) => this.subscribed.has(ch)));
  }
  async #post(body, signal) {
    const res = await fetch(this.base + "/poll", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + this.token },
      body: JSON.stringify(body),
      signal,
    });
    if (!res.ok) {
      const err = await res.json().catch(() => ({}));
      throw new TransportError("poll: " + (err?.error?.message ?? res.status), res.status === 401 ? 4000 : 1006, err?.error?.code);
    }
    return res.json();
  }
  async #poll() {
    // One controller per poll, so that restart() ends only this one.
    const ctl = new AbortController();
    const stop = () => ctl.abort();
    this.abort.signal.addEventListener("abort", stop);
    this.current = ctl;
    try {
      const body = await this.#post(this.first
        ? { cursors: {}, channels: {}, wait_ms: 0 }
        : {
            cursors: this.hooks.cursors(), reads: this.hooks.reads?.() ?? {},
            presence: this.hooks.presence?.() ?? {}, channels: this.#channels(), wait_ms: 25000,
          }, ctl.signal);
      this.first = false;
      this.hooks.alive();
      for (const f of body.frames ?? []) this.hooks.frame(f);
      // A restart asked for once the answer was in ended nothing: the next
      // poll reads the current state anyway.
      this.restarting = false;
    } finally {
      this.abort.signal.removeEventListener("abort", stop);
      if (this.current === ctl) this.current = undefined;
    }
  }
  async #loop() {
    while (!this.abort.signal.aborted) {
      try {
        await this.#poll();
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (this.restarting) {
          this.restarting = false;
          continue;
        }
        this.hooks.closed(err.code || 1006, err.message);
        return;
      }
    }
  }
  /** Ends the waiting poll; the loop polls again with the current state. */
  restart() {
    if (!this.current) return;
    this.restarting = true;
    this.current.abort();
  }
  request(frame) {
    if (frame.type === "subscribe" || frame.type === "unsubscribe") {
      this.#channelRequest(frame);
      return true;
    }
    rpc(this.base, this.token, frame, undefined).then(
      (frames) => frames.forEach((f) => this.hooks.frame(f)),
      (err) => this.hooks.requestFailed(frame, err),
    );
    return true;
  }
  async #channelRequest(frame) {
    const { id, channel } = frame;
    if (frame.type === "unsubscribe") {
      this.subscribed.delete(channel);
      this.restart();
      this.hooks.frame({ type: "result", id, data: { channel, offset: 0 } });
      return;
    }
    const since = frame.since ?? 0;
    try {
      await this.#post({ cursors: {}, channels: { [channel]: since }, wait_ms: 0 }, this.abort.signal);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      if (err.errorCode) {
        // Refused for what it is: an error frame, as over WebSocket.
        this.hooks.frame({ type: "error", id, code: err.errorCode, message: err.message });
      } else {
        this.hooks.requestFailed(frame, err);
      }
      return;
    }
    this.subscribed.add(channel);
    this.restart();
    // The replay after since comes with the next poll (its channels carry
    // the offset), as channel.message frames.
    this.hooks.frame({ type: "result", id, data: { channel, offset: since } });
  }
  close() {
    this.abort.abort();
  }
}

/** A transport-level failure; code is a close code when one applies. */
export class TransportError extends Error {
  constructor(message, code = 0, errorCode = undefined) {
    super(message);
    this.code = code;
    this.errorCode = errorCode;
  }
}

/** An error frame from the server for one request. */
export class DuplexError extends Error {
  constructor(frame) {
    super(frame.message || frame.code);
    this.code = frame.code;
    this.frame = frame;
  }
}

const RETRYABLE = new Set(["internal", "unavailable", "rate_limited"]);
// Subscribe refusals that will not change by retrying: the channel is
// dropped from the subscriptions (long-polls would fail with it for ever).
const SUBSCRIBE_REFUSED = new Set(["not_found", "forbidden", "bad_request", "too_large"]);
const TRANSPORTS = { websocket: WebSocketTransport, sse: SSETransport, longpoll: LongPollTransport };

/**
 * Duplex is one user's connection to a duplex server. Events:
 *   "state"    {state, transport, attempt, delay, code, reason}
 *   "welcome"  the welcome frame (conversations with unread counts)
 *   "message"  a conversation message, in seq order, never twice
 *   "pending"  {conv, clientMsgId, body, meta} a send waiting for its ack
 *   "ack"      {conv, seq, client_msg_id, ts}
 *   "receipt", "typing", "presence", "channel", "member", "conversation"
 *   "error"    an error frame not tied to a request, or a transport problem
 */
export class Duplex extends Emitter {
  constructor(opts = {}) {
    super();
    this.opts = {
      url: globalThis.location?.origin ?? "http://127.0.0.1:8080",
      transports: ["websocket", "sse", "longpoll"],
      heartbeatMs: 20000,
      heartbeatTimeoutMs: 10000,
      requestTimeoutMs: 15000,
      upgradeProbeMs: 60000,
      backoff: { base: 500, cap: 30000 },
      ...opts,
    };
    for (const name of this.opts.transports) {
      if (!this.#transportClass(name)) throw new Error(`duplex: unknown transport ${name}`);
    }
    this.base = httpBase(this.opts.url);
    this.token = opts.token;
    this.state = State.IDLE;
    this.transport = undefined;
    this.resume = new ResumeTracker();
    this.resume.restore(opts.seqs);
    this.outgoing = new OutgoingQueue(opts.queueLimit ?? 1000);
    this.channels = new Map(); // channel -> last offset
    this.conversations = new Map(); // id -> conversation (from welcome and events)
    // user -> online, for every user the app asked presence() about or
    // heard a presence event of: long-polls send it, and the server
    // answers with what changed between two polls.
    this.presenceKnown = new Map();
    this.#pending = new Map(); // request id -> {resolve, reject, frames, timer}
    this.#syncing = new Set();
    this.#attempt = 0;
    this.#nextId = 1;
  }

  #pending;
  #syncing;
  #attempt;
  #nextId;
  #timers = new Set();
  #lastFrameAt = 0;
  #gen = 0; // increments per connection attempt; stale callbacks compare it

  /** Starts connecting (and reconnecting) until close() is called. */
  connect() {
    if (this.state !== State.IDLE && this.state !== State.CLOSED && this.state !== State.OFFLINE) return;
    this.#open(0);
  }

  /** Closes for good: no reconnects. Unacknowledged sends stay queued. */
  close() {
    this.#gen++;
    this.#clearTimers();
    this.transport?.close();
    this.transport = undefined;
    this.#setState(State.CLOSED, {});
  }

  /**
   * Sends a message to a conversation. Resolves with the acknowledgement
   * once the server has stored it; while offline it waits in the queue.
   */
  send(conv, body, { meta, clientMsgId = newClientMsgId() } = {}) {
    return new Promise((resolve, reject) => {
      const item = this.outgoing.add({ conv, body, meta, clientMsgId, resolve, reject });
      this.emit("pending", { conv, clientMsgId, body, meta });
      if (this.state === State.CONNECTED) this.#transmit(item);
    });
  }

  /** Older messages of a conversation, newest first, before `before`. */
  async history(conv, { before = 0, limit = 50 } = {}) {
    const r = await this.request({ type: "history", conv, before, limit });
    return r.data?.messages ?? r.data ?? [];
  }

  /** Marks a conversation read up to seq (a receipt for the others). */
  read(conv, seq) {
    return this.request({ type: "read", conv, seq });
  }

  /** Tells the others this user is typing (the server rate-limits it). */
  typing(conv) {
    if (this.state !== State.CONNECTED) return Promise.resolve();
    return this.request({ type: "typing", conv }).catch(() => {});
  }

  createDirect(peer) {
    return this.request({ type: "create_direct", peer }).then((r) => this.#adopt(r.data?.conversation ?? r.data));
  }

  createGroup(title, members) {
    return this.request({ type: "create_group", title, members }).then((r) => this.#adopt(r.data?.conversation ?? r.data));
  }

  /** Subscribes to a channel; since replays history after that offset. */
  subscribe(channel, { since } = {}) {
    if (!this.channels.has(channel)) this.channels.set(channel, since ?? 0);
    if (this.state !== State.CONNECTED) return Promise.resolve();
    return this.#subscribe(channel, since);
  }

  /** Sends a subscribe; a refusal removes the channel from this.channels. */
  #subscribe(channel, since) {
    return this.request({ type: "subscribe", channel, ...(since !== undefined ? { since } : {}) }).catch((err) => {
      if (err instanceof DuplexError && SUBSCRIBE_REFUSED.has(err.code)) this.channels.delete(channel);
      throw err;
    });
  }

  unsubscribe(channel) {
    this.channels.delete(channel);
    if (this.state !== State.CONNECTED) return Promise.resolve();
    return this.request({ type: "unsubscribe", channel });
  }

  publish(channel, data) {
    return this.request({ type: "publish", channel, data });
  }

  presence(users) {
    return this.request({ type: "presence", users }).then((r) => {
      for (const p of Array.isArray(r.data) ? r.data : r.data?.presence ?? []) this.presenceKnown.set(p.user, p.online);
      return r.data;
    });
  }

  /**
   * Sends one request and resolves with its reply frame (result or ack), or
   * rejects with a DuplexError. For sync it resolves with the sync.end.
   */
  request(frame) {
    return new Promise((resolve, reject) => {
      if (this.state !== State.CONNECTED || !this.transport) {
        reject(new TransportError("duplex: not connected"));
        return;
      }
      const id = "r" + this.#nextId++;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TransportError("duplex: request timed out"));
      }, this.opts.requestTimeoutMs);
      this.#pending.set(id, { resolve, reject, timer, frame });
      if (!this.transport.request({ ...frame, id })) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new TransportError("duplex: not connected"));
      }
    });
  }

  // --- connection lifecycle -------------------------------------------

  async #open(transportIndex) {
    const gen = ++this.#gen;
    const name = this.opts.transports[transportIndex];
    this.#setState(this.#attempt === 0 ? State.CONNECTING : State.RECONNECTING, { transport: name });
    if (!this.token && this.opts.getToken) {
      let token;
      try {
        token = await this.opts.getToken();
      } catch (err) {
        // No token now (the auth service is down too?): try again later.
        if (gen === this.#gen) this.#retry(1006, "getToken: " + (err?.message ?? err));
        return;
      }
      if (gen !== this.#gen) return;
      this.token = token;
    }
    const Transport = this.#transportClass(name);
    const t = new Transport(this.base, this.token, this.#hooks(gen));
    // The transport is current before open() settles: SSE and long-polling
    // deliver the welcome from inside open(), and what the welcome starts
    // (resume syncs, queued sends) must already go through it.
    this.transport = t;
    try {
      await t.open();
    } catch (err) {
      t.close();
      if (this.transport === t) this.transport = undefined;
      if (gen !== this.#gen) return;
      if (err.code === 4000) return this.#stop(4000, "unauthorized");
      if (transportIndex + 1 < this.opts.transports.length) return this.#open(transportIndex + 1);
      return this.#retry(err.code || 1006, err.message);
    }
    if (gen !== this.#gen) {
      t.close();
      if (this.transport === t) this.transport = undefined;
      return;
    }
    this.#lastFrameAt = Date.now();
    this.#heartbeat(gen);
    // On a fallback, keep trying the transports preferred to this one: a
    // page that fell back while the server was down (long-polling, say, when
    // SSE was refused for a moment) must not stay there for good.
    if (transportIndex > 0) this.#scheduleUpgradeProbe(gen, transportIndex);
    // CONNECTED is announced when the welcome frame arrives.
  }

  #hooks(gen) {
    return {
      frame: (data) => {
        if (gen !== this.#gen) return;
        this.#lastFrameAt = Date.now();
        this.#onFrame(typeof data === "string" ? data : JSON.stringify(data));
      },
      alive: () => {
        if (gen === this.#gen) this.#lastFrameAt = Date.now();
      },
      closed: (code, reason) => {
        if (gen === this.#gen) this.#onClosed(code, reason);
      },
      requestFailed: (frame, err) => {
        if (gen !== this.#gen) return;
        const p = this.#pending.get(frame.id);
        if (p) {
          clearTimeout(p.timer);
          this.#pending.delete(frame.id);
          p.reject(err);
        }
        // A send the server refused for what it is (too large, invalid,
        // not a member) fails; any other failure is retried by the
        // request's rejection handler in #transmit, after a pause.
        if (frame.type === "send" && err.errorCode && !RETRYABLE.has(err.errorCode) && err.code !== 4000) {
          this.#refuse(frame.client_msg_id, { code: err.errorCode, message: err.message });
        }
        if (err.code === 4000) this.#onClosed(4000, err.message);
      },
      cursors: () => this.resume.snapshot(),
      channels: () => Object.fromEntries(this.channels),
      reads: () => this.#reads(),
      presence: () => Object.fromEntries(this.presenceKnown),
    };
  }

  #onClosed(code, reason) {
    this.transport?.close();
    this.transport = undefined;
    this.#clearTimers();
    this.#failPending(new TransportError("duplex: connection closed", code));
    this.outgoing.resetInFlight();
    this.#syncing.clear();
    const action = closeAction(code);
    if (action === "stop") return this.#stop(code, reason);
    if (action === "refresh") {
      if (!this.opts.getToken) return this.#stop(code, reason);
      this.token = undefined; // #open asks getToken for a fresh one
    }
    this.#retry(code, reason);
  }

  #retry(code, reason) {
    this.#gen++;
    const delay = Math.max(minRetryDelay(code), backoffDelay(this.#attempt, this.opts.backoff));
    this.#attempt++;
    const offline = globalThis.navigator?.onLine === false;
    this.#setState(offline ? State.OFFLINE : State.RECONNECTING, { attempt: this.#attempt, delay, code, reason });
    this.#later(() => this.#open(0), delay);
  }

  #stop(code, reason) {
    this.#gen++;
    this.#clearTimers();
    this.#setState(State.CLOSED, { code, reason });
  }

  #heartbeat(gen) {
    const tick = () => {
      if (gen !== this.#gen) return;
      const idle = Date.now() - this.#lastFrameAt;
      if (idle > this.opts.heartbeatMs + this.opts.heartbeatTimeoutMs) {
        this.#onClosed(1006, "heartbeat timeout");
        return;
      }
      if (idle >= this.opts.heartbeatMs && this.state === State.CONNECTED && this.transport?.name === "websocket") {
        this.request({ type: "ping" }).catch(() => {});
      }
      this.#later(tick, Math.min(this.opts.heartbeatMs, this.opts.heartbeatTimeoutMs) / 2);
    };
    this.#later(tick, this.opts.heartbeatTimeoutMs / 2);
  }

  /** The class of transport name: the caller's override or the built-in one. */
  #transportClass(name) {
    return this.opts.transportClasses?.[name] ?? TRANSPORTS[name];
  }

  #scheduleUpgradeProbe(gen, current) {
    this.#later(async () => {
      if (gen !== this.#gen || this.state !== State.CONNECTED) return;
      let works = false;
      const hooks = { frame() {}, closed() {}, alive() {}, requestFailed() {}, cursors: () => ({}), channels: () => ({}), reads: () => ({}), presence: () => ({}) };
      for (const name of this.opts.transports.slice(0, current)) {
        const Transport = this.#transportClass(name);
        const probe = new Transport(this.base, this.token, hooks);
        try {
          await probe.open();
          works = true;
        } catch { /* still refused: try the next, or again later */ }
        probe.close();
        if (works || gen !== this.#gen) break;
      }
      if (gen !== this.#gen) return;
      if (!works) return this.#scheduleUpgradeProbe(gen, current);
      // A preferred transport works again: switch, trying them in order from
      // the first; resume makes the switch lossless.
      this.transport?.close();
      this.transport = undefined;
      this.#failPending(new TransportError("duplex: switching transport"));
      this.outgoing.resetInFlight();
      this.#syncing.clear();
      this.#attempt = 0;
      this.#open(0);
    }, this.opts.upgradeProbeMs);
  }

  #later(fn, ms) {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  #clearTimers() {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #failPending(err) {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(id);
    }
  }

  #setState(state, info) {
    this.state = state;
    this.emit("state", { state, transport: info.transport ?? this.transport?.name, ...info });
  }

  // --- inbound frames --------------------------------------------------

  #onFrame(text) {
    let f;
    try {
      f = JSON.parse(text);
    } catch {
      this.emit("error", new TransportError("duplex: server sent invalid JSON"));
      return;
    }
    switch (f.type) {
      case "welcome":
        return this.#onWelcome(f);
      case "message":
        return this.#onMessage(f);
      case "ack":
        return this.#onAck(f);
      case "result":
      case "sync.end":
        return this.#onReply(f);
      case "error":
        return this.#onError(f);
      case "receipt":
        this.#onReceipt(f);
        return this.emit(f.type, f);
      case "presence":
        this.presenceKnown.set(f.user, f.online);
        return this.emit(f.type, f);
      case "member":
        // Your own removal (live, or found by a long-poll): the
        // conversation is gone, and its cursor must not be polled again.
        if (f.user === this.user && f.action === "removed") {
          this.conversations.delete(f.conv);
          this.resume.forget(f.conv);
        }
        return this.emit(f.type, f);
      case "typing":
        return this.emit(f.type, f);
      case "channel.message":
        if (f.offset) this.channels.set(f.channel, Math.max(this.channels.get(f.channel) ?? 0, f.offset));
        return this.emit("channel", f);
      case "conversation":
        this.#adopt(f.conversation);
        return this.emit("conversation", f.conversation);
      default:
        return; // newer servers may add events; ignoring them is the contract
    }
  }

  #onWelcome(w) {
    this.user = w.user;
    this.session = w.session;
    this.limits = w.limits;
    // The welcome lists every conversation of yours: those missing from
    // it you were removed from while away (resume.welcome drops their
    // saved cursors too).
    const listed = new Set((w.conversations ?? []).map((c) => c.id));
    for (const id of [...this.conversations.keys()]) if (!listed.has(id)) this.conversations.delete(id);
    for (const c of w.conversations ?? []) this.conversations.set(c.id, c);
    const syncs = this.resume.welcome(w.conversations ?? []);
    this.#attempt = 0;
    this.#setState(State.CONNECTED, {});
    this.emit("welcome", w);
    for (const s of syncs) this.#sync(s.conv, s.after);
    for (const [channel, offset] of this.channels) {
      this.#subscribe(channel, offset || undefined).catch((err) => this.emit("error", err));
    }
    for (const item of this.outgoing.unsent()) this.#transmit(item);
  }

  /** Moves conversation.reads (member -> read seq) forward. */
  #onReceipt(r) {
    const c = this.conversations.get(r.conv);
    if (!c) return;
    c.reads ??= {};
    if (r.seq > (c.reads[r.user] ?? 0)) c.reads[r.user] = r.seq;
    if (r.user === this.user && r.seq > (c.read_seq ?? 0)) c.read_seq = r.seq;
  }

  /**
   * The read positions the client holds, for long-polls: the server
   * answers with receipts for members who read further meanwhile.
   */
  #reads() {
    const out = {};
    for (const [id, c] of this.conversations) out[id] = c.reads ?? {};
    return out;
  }

  #onMessage(m) {
    const { deliver, gapAfter } = this.resume.accept(m);
    for (const x of deliver) {
      const c = this.conversations.get(x.conv);
      if (c && x.seq > c.last_seq) c.last_seq = x.seq;
      this.emit("message", x);
    }
    if (gapAfter !== undefined) this.#sync(m.conv, gapAfter);
  }

  #onAck(a) {
    this.#settle(a.id, a);
    const item = this.outgoing.take(a.client_msg_id);
    this.emit("ack", a);
    if (item) {
      // The sending device learns its own message from the ack; the same
      // message may also arrive as an event, which the tracker drops.
      this.#onMessage({
        type: "message", conv: a.conv, seq: a.seq, sender: this.user,
        client_msg_id: a.client_msg_id, body: item.body, meta: item.meta, ts: a.ts,
      });
      item.resolve(a);
    }
  }

  #onReply(f) {
    if (f.type === "sync.end") {
      this.#syncing.delete(f.conv);
      if (f.more || this.resume.hasGap(f.conv)) this.#sync(f.conv, this.resume.seq(f.conv) ?? f.seq);
    }
    this.#settle(f.id, f);
  }

  #onError(f) {
    const p = f.id && this.#pending.get(f.id);
    if (p) {
      clearTimeout(p.timer);
      this.#pending.delete(f.id);
      if (p.frame.type === "send") {
        const item = this.outgoing.pending().find((i) => i.clientMsgId === p.frame.client_msg_id);
        if (item && RETRYABLE.has(f.code)) {
          this.#queueAgain(item.clientMsgId, 1000);
        } else if (item) {
          this.#refuse(item.clientMsgId, f);
        }
        return;
      }
      if (p.frame.type === "sync") this.#syncing.delete(p.frame.conv);
      p.reject(new DuplexError(f));
      return;
    }
    this.emit("error", new DuplexError(f));
  }

  #settle(id, frame) {
    const p = id && this.#pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.#pending.delete(id);
    p.resolve(frame);
  }

  #sync(conv, after) {
    if (this.#syncing.has(conv)) return;
    this.#syncing.add(conv);
    this.request({ type: "sync", conv, after }).catch(() => this.#syncing.delete(conv));
  }

  #transmit(item) {
    const frame = { type: "send", conv: item.conv, client_msg_id: item.clientMsgId, body: item.body };
    if (item.meta !== undefined) frame.meta = item.meta;
    // A frame over the server's limit would get the WebSocket closed with
    // 1009, and the reconnect would send it again, for ever: refuse it here.
    const max = this.limits?.max_frame ?? 65536;
    if (frameBytes(frame) > max) {
      this.#refuse(item.clientMsgId, { code: "too_large", message: `duplex: message frame over ${max} bytes` });
      return;
    }
    this.outgoing.markSent(item.clientMsgId);
    // The ack settles the queue item; the request promise only tracks time.
    this.request(frame).catch(() => this.#queueAgain(item.clientMsgId, 1000));
  }

  /** Drops a queued send for good and rejects its promise. */
  #refuse(clientMsgId, frame) {
    const item = this.outgoing.take(clientMsgId);
    item?.reject(new DuplexError({ type: "error", ...frame }));
  }

  #queueAgain(clientMsgId, delay = 0) {
    const item = this.outgoing.pending().find((i) => i.clientMsgId === clientMsgId);
    if (!item) return;
    item.inFlight = false;
    const gen = this.#gen;
    this.#later(() => {
      if (gen === this.#gen && this.state === State.CONNECTED && !item.inFlight) this.#transmit(item);
    }, delay);
  }

  #adopt(c) {
    if (c?.id) {
      this.conversations.set(c.id, c);
      this.resume.track(c.id, c.last_seq ?? 0);
    }
    return c;
  }
}
