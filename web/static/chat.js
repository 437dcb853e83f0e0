// The chat page: a small application on top of duplex.js. Everything it
// needs is served by the duplex binary; no framework, no build step.
import { Duplex, State, newClientMsgId } from "/duplex.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "duplex.token";
const SEQS_KEY = "duplex.seqs";
const NOTICE_KEY = "duplex.notice"; // shown on the login form after a reload

const ui = {
  convs: new Map(), // id -> conversation
  presence: new Map(), // user -> {online, last_seen}
  messages: new Map(), // conv -> Map(client_msg_id -> message or pending)
  oldest: new Map(), // conv -> lowest seq loaded (for scroll-back)
  seen: new Map(), // conv -> Map(user -> seq read)
  typing: new Map(), // conv -> Map(user -> expiry ms)
  open: undefined,
  me: undefined,
};
let dx;
let devMode = false;
let renewed = 0; // when the token was last renewed after a refusal
let served; // the transports the server offers (GET /api/info), in its order

async function info() {
  try {
    const r = await fetch("/api/info");
    if (r.ok) return await r.json();
  } catch { /* older server */ }
  return { dev: false };
}

async function start() {
  const { dev, transports } = await info();
  // Transports this page does not know (a newer server) are skipped.
  const known = (Array.isArray(transports) ? transports : []).filter((t) => ["websocket", "sse", "longpoll"].includes(t));
  served = known.length ? known : undefined;
  $("devmode").hidden = !dev;
  $("login-name").hidden = $("login-name-label").hidden = !dev;
  $("login-name").required = dev;
  $("login-token").hidden = $("login-token-label").hidden = dev;
  devMode = dev;
  $("login-form").onsubmit = async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    try {
      const token = dev ? await devLogin($("login-name").value.trim()) : $("login-token").value.trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      enter(token);
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  };
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) return enter(saved);
  $("login").hidden = false;
  $("login-error").textContent = sessionStorage.getItem(NOTICE_KEY) ?? "";
  sessionStorage.removeItem(NOTICE_KEY);
}

// renewToken gets a fresh token when the server refuses or expires the one
// held: in dev mode by logging in again by name; otherwise it is up to the
// person, so the page goes back to the login form saying why.
async function renewToken() {
  if (!devMode) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.setItem(NOTICE_KEY, "Your session has ended: log in again.");
    location.reload();
    return new Promise(() => {}); // the page is going away
  }
  const token = await devLogin(ui.me);
  sessionStorage.setItem(TOKEN_KEY, token);
  return token;
}

async function devLogin(user) {
  const r = await fetch("/api/dev/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body?.error?.message ?? "login failed");
  return body.token;
}

function userOf(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
  } catch {
    return "";
  }
}

function enter(token) {
  $("login").hidden = true;
  $("app").hidden = false;
  ui.me = userOf(token);
  $("me-name").textContent = ui.me;
  // ?transports=a,b overrides what the server offers (to try a fallback
  // by hand, or to see the client fall back from a refused WebSocket).
  const params = new URLSearchParams(location.search);
  const transports = params.get("transports")?.split(",") ?? served;
  const seqs = JSON.parse(localStorage.getItem(SEQS_KEY + "." + ui.me) ?? "{}");
  dx = new Duplex({ token, seqs, getToken: renewToken, ...(transports ? { transports } : {}) });
  window.duplexClient = dx; // for tests and the curious
  dx.on("state", onState);
  dx.on("welcome", onWelcome);
  dx.on("message", onMessage);
  dx.on("pending", onPending);
  dx.on("receipt", onReceipt);
  dx.on("typing", onTyping);
  dx.on("presence", (p) => { ui.presence.set(p.user, p); renderConvs(); });
  dx.on("conversation", adopt);
  dx.on("member", (m) => (m.user === ui.me && m.action === "removed" ? leftConv(m.conv) : refreshConversations()));
  dx.connect();
  wire();
}

function wire() {
  $("logout").onclick = () => {
    dx.close();
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  };
  $("new-direct").onsubmit = async (e) => {
    e.preventDefault();
    const peer = $("new-direct-peer").value.trim();
    if (!peer) return;
    try {
      const c = await dx.createDirect(peer);
      $("new-direct-peer").value = "";
      adopt(c);
      openConv(c.id);
    } catch (err) {
      alert(err.message);
    }
  };
  $("new-group").onsubmit = async (e) => {
    e.preventDefault();
    const members = $("new-group-members").value.split(",").map((s) => s.trim()).filter(Boolean);
    try {
      const c = await dx.createGroup($("new-group-title").value.trim(), members);
      adopt(c);
      $("new-group").reset();
      $("new-group").closest("details").open = false;
      openConv(c.id);
    } catch (err) {
      alert(err.message);
    }
  };
  const text = $("composer-text");
  $("composer").onsubmit = (e) => {
    e.preventDefault();
    const body = text.value.trim();
    if (!body || !ui.open) return;
    text.value = "";
    const conv = ui.open, clientMsgId = newClientMsgId();
    dx.send(conv, body, { clientMsgId }).catch((err) => notSent(conv, clientMsgId, err));
  };
  text.onkeydown = (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  };
  let lastTyping = 0;
  text.oninput = () => {
    const now = Date.now();
    const every = dx.limits?.typing_interval_ms ?? 2000;
    if (ui.open && now - lastTyping > every) {
      lastTyping = now;
      dx.typing(ui.open);
    }
  };
  $("messages").onscroll = () => {
    if ($("messages").scrollTop < 40) loadOlder();
  };
  $("back").onclick = () => $("app").classList.remove("open");
  setInterval(renderTyping, 1000);
}

function onState(s) {
  // Credentials refused (an expired token is refused at connect time):
  // renew them and connect again, but not in a loop.
  if (s.state === State.CLOSED && s.code === 4000 && Date.now() - renewed > 30000) {
    renewed = Date.now();
    renewToken().then((token) => {
      dx.token = token;
      dx.connect();
    }, (err) => { $("banner").textContent = "Disconnected: " + err.message; });
  }
  const b = $("banner");
  b.dataset.state = s.state;
  b.dataset.transport = s.transport ?? "";
  const via = s.transport && s.transport !== "websocket" ? ` via ${s.transport === "sse" ? "Server-Sent Events" : "long-polling"}` : "";
  b.textContent = {
    connecting: "Connecting…",
    connected: "Connected" + via,
    reconnecting: `Reconnecting${s.delay ? " in " + Math.ceil(s.delay / 1000) + " s" : ""}… messages you write are kept and sent later`,
    offline: "Offline: messages you write are kept and sent when you are back",
    closed: `Disconnected${s.reason ? ": " + s.reason : ""}`,
  }[s.state] ?? s.state;
  document.body.dataset.connection = s.state;
  document.body.dataset.transport = s.transport ?? "";
}

function onWelcome(w) {
  ui.me = w.user;
  // The welcome lists every conversation of yours: one missing from it
  // you were removed from while away.
  const listed = new Set(w.conversations.map((c) => c.id));
  for (const id of [...ui.convs.keys()]) if (!listed.has(id)) leftConv(id);
  for (const c of w.conversations) {
    ui.convs.set(c.id, c);
    noteReads(c);
  }
  renderConvs();
  askPresence(w.conversations);
  if (ui.open) renderMessages();
  else if (!matchMedia("(max-width: 700px)").matches && w.conversations.length) openConv(sortedConvs()[0].id);
}

// askPresence asks whether the other members of convs are online. Presence
// events only report changes, so a conversation that appears while both
// sides are already online needs this to show the right dot.
function askPresence(convs) {
  const peers = [...new Set(convs.flatMap((c) => c.members ?? []))].filter((u) => u !== ui.me);
  if (!peers.length) return;
  dx.presence(peers.slice(0, 100)).then((r) => {
    for (const p of r?.presence ?? []) ui.presence.set(p.user, p);
    renderConvs();
  }).catch(() => {});
}

// leftConv forgets a conversation you were removed from (or left): it goes
// from the list, and the chat closes if it was open.
function leftConv(id) {
  ui.convs.delete(id);
  for (const m of [ui.messages, ui.oldest, ui.seen, ui.typing]) m.delete(id);
  if (ui.open === id) {
    ui.open = undefined;
    $("chat-title").textContent = "Pick a conversation";
    $("chat-members").textContent = "";
    $("messages").replaceChildren();
    $("composer").hidden = true;
    $("app").classList.remove("open");
  }
  renderConvs();
}

// adopt records a conversation that appeared after the welcome.
function adopt(c) {
  const known = ui.convs.has(c.id);
  noteReads(c);
  ui.convs.set(c.id, { ...ui.convs.get(c.id), ...c });
  if (!known) askPresence([c]);
  renderConvs();
}

async function refreshConversations() {
  try {
    const r = await dx.request({ type: "conversations" });
    for (const c of r.data?.conversations ?? r.data ?? []) {
      ui.convs.set(c.id, c);
      noteReads(c);
    }
    renderConvs();
    if (ui.open) renderMessages();
  } catch { /* next welcome brings them */ }
}

function convMessages(conv) {
  if (!ui.messages.has(conv)) ui.messages.set(conv, new Map());
  return ui.messages.get(conv);
}

function onPending(p) {
  convMessages(p.conv).set(p.clientMsgId, { conv: p.conv, sender: ui.me, body: p.body, client_msg_id: p.clientMsgId, pending: true });
  if (p.conv === ui.open) renderMessages(true);
}

// notSent marks a message the server refused (too large, not a member any
// more): it stays in the list, saying why, instead of pending forever.
function notSent(conv, clientMsgId, err) {
  const m = convMessages(conv).get(clientMsgId);
  if (!m?.pending) return;
  m.pending = false;
  m.failed = err.message || String(err);
  if (conv === ui.open) renderMessages();
}

function onMessage(m) {
  convMessages(m.conv).set(m.client_msg_id || "seq" + m.seq, m);
  const c = ui.convs.get(m.conv);
  if (c) {
    // The welcome's unread count already covers messages up to its
    // last_seq (which a resume sync replays); count only newer ones.
    const fresh = m.seq > (c.last_seq ?? 0);
    c.last_seq = Math.max(c.last_seq ?? 0, m.seq);
    c.last_ts = m.ts;
    if (fresh && m.sender !== ui.me && m.seq > (c.read_seq ?? 0)) c.unread = (c.unread ?? 0) + 1;
    if (m.sender === ui.me) c.read_seq = Math.max(c.read_seq ?? 0, m.seq);
  } else {
    refreshConversations();
  }
  if (!ui.oldest.has(m.conv)) ui.oldest.set(m.conv, m.seq);
  ui.typing.get(m.conv)?.delete(m.sender); // their message ends their typing
  renderTyping();
  localStorage.setItem(SEQS_KEY + "." + ui.me, JSON.stringify(dx.resume.snapshot()));
  if (m.conv === ui.open) {
    renderMessages(true);
    markRead();
  }
  renderConvs();
}

// noteReads takes the other members' read positions of a conversation
// object (welcome, conversations result), so "seen by" also covers reads
// made before this page connected.
function noteReads(c) {
  for (const [user, seq] of Object.entries(c.reads ?? {})) {
    if (user !== ui.me) onReceipt({ conv: c.id, user, seq });
  }
}

function onReceipt(r) {
  if (r.user === ui.me) {
    const c = ui.convs.get(r.conv);
    if (c) {
      c.read_seq = Math.max(c.read_seq ?? 0, r.seq);
      c.unread = 0;
      renderConvs();
    }
    return;
  }
  if (!ui.seen.has(r.conv)) ui.seen.set(r.conv, new Map());
  ui.seen.get(r.conv).set(r.user, Math.max(ui.seen.get(r.conv).get(r.user) ?? 0, r.seq));
  if (r.conv === ui.open) renderMessages();
}

function onTyping(t) {
  if (t.user === ui.me) return;
  if (!ui.typing.has(t.conv)) ui.typing.set(t.conv, new Map());
  ui.typing.get(t.conv).set(t.user, Date.now() + (t.ttl_ms || 5000));
  renderTyping();
}

function renderTyping() {
  const now = Date.now();
  const m = ui.typing.get(ui.open);
  const who = m ? [...m].filter(([, exp]) => exp > now).map(([u]) => u) : [];
  $("typing").textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "";
}

function title(c) {
  if (c.kind === "direct") return (c.members ?? []).find((u) => u !== ui.me) ?? c.title ?? c.id;
  return c.title || c.id;
}

function sortedConvs() {
  return [...ui.convs.values()].sort((a, b) => (b.last_ts ?? b.created_at ?? 0) - (a.last_ts ?? a.created_at ?? 0) || (b.last_seq ?? 0) - (a.last_seq ?? 0));
}

function renderConvs() {
  const list = $("convs");
  // Redrawing replaces the buttons: keep keyboard focus on the same
  // conversation instead of dropping it to the page.
  const focused = list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.conv : undefined;
  list.replaceChildren(...sortedConvs().map((c) => {
    const li = document.createElement("li");
    li.dataset.conv = c.id;
    if (c.id === ui.open) li.setAttribute("aria-current", "true");
    const btn = document.createElement("button");
    btn.type = "button";
    const dot = document.createElement("span");
    if (c.kind === "direct") {
      const peer = title(c);
      const online = ui.presence.get(peer)?.online;
      dot.className = "dot" + (online ? " online" : "");
      dot.title = online ? "online" : "offline";
    } else {
      dot.className = "dot group";
    }
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = title(c);
    btn.append(dot, name);
    if (c.unread > 0 && c.id !== ui.open) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = c.unread;
      badge.setAttribute("aria-label", `${c.unread} unread`);
      btn.append(badge);
    }
    btn.onclick = () => openConv(c.id);
    li.append(btn);
    return li;
  }));
  if (focused) list.querySelector(`li[data-conv="${CSS.escape(focused)}"] button`)?.focus();
}

async function openConv(id) {
  ui.open = id;
  const c = ui.convs.get(id);
  $("chat-title").textContent = c ? title(c) : id;
  $("chat-members").textContent = c?.kind === "group" ? (c.members ?? []).join(", ") : "";
  $("composer").hidden = false;
  $("app").classList.add("open");
  renderConvs();
  renderMessages(true);
  if (!ui.oldest.has(id) || convMessages(id).size < 20) await loadOlder(true);
  markRead();
  $("composer-text").focus();
}

let loading = false;
async function loadOlder(initial = false) {
  const conv = ui.open;
  if (!conv || loading || dx.state !== State.CONNECTED) return;
  const before = ui.oldest.get(conv) ?? 0;
  if (before === 1) return; // everything is loaded
  loading = true;
  try {
    const box = $("messages");
    const height = box.scrollHeight;
    const msgs = await dx.history(conv, { before, limit: 50 });
    for (const m of msgs) convMessages(conv).set(m.client_msg_id || "seq" + m.seq, m);
    const low = Math.min(...msgs.map((m) => m.seq), before || Infinity);
    ui.oldest.set(conv, msgs.length ? low : 1);
    renderMessages(initial);
    if (!initial) box.scrollTop = box.scrollHeight - height;
  } catch { /* offline: the next open retries */ } finally {
    loading = false;
  }
}

function markRead() {
  const c = ui.convs.get(ui.open);
  if (!c || !document.hasFocus?.() && document.visibilityState !== "visible") return;
  const top = Math.max(0, ...[...convMessages(ui.open).values()].filter((m) => m.seq !== undefined).map((m) => m.seq));
  if (top > (c.read_seq ?? 0) || c.unread > 0) {
    c.read_seq = Math.max(c.read_seq ?? 0, top);
    c.unread = 0;
    if (top > 0 && dx.state === State.CONNECTED) dx.read(ui.open, top).catch(() => {});
    renderConvs();
  }
}

function renderMessages(scroll = false) {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  // Stored messages by seq; pending and refused ones (no seq yet) last.
  const all = [...convMessages(ui.open).values()].sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
  const seen = ui.seen.get(ui.open) ?? new Map();
  const items = [];
  if (ui.oldest.get(ui.open) === 1 && all.length) {
    const li = document.createElement("li");
    li.className = "history-marker";
    li.textContent = "Beginning of the conversation";
    items.push(li);
  }
  const lastMine = all.filter((m) => m.sender === ui.me && m.seq !== undefined).at(-1);
  for (const m of all) {
    const li = document.createElement("li");
    li.className = (m.sender === ui.me ? "mine" : "") + (m.pending ? " pending" : "") + (m.failed ? " failed" : "");
    li.dataset.seq = m.seq ?? "";
    li.dataset.clientMsgId = m.client_msg_id ?? "";
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = m.sender;
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = m.body;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = m.pending ? "sending…" : m.failed ? "not sent: " + m.failed :
      new Date(m.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (m === lastMine) {
      const by = [...seen].filter(([, s]) => s >= m.seq).map(([u]) => u);
      if (by.length) {
        meta.textContent += ` · seen by ${by.join(", ")}`;
        li.dataset.seenBy = by.join(",");
      }
    }
    li.append(from, body, meta);
    items.push(li);
  }
  box.replaceChildren(...items);
  if (scroll || atBottom) box.scrollTop = box.scrollHeight;
}

document.addEventListener("visibilitychange", () => ui.open && markRead());
window.addEventListener("focus", () => ui.open && markRead());
start();
