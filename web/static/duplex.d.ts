// TypeScript declarations for duplex.js (the duplex.v1 browser client).

export const PROTOCOL: "duplex.v1";

export declare const State: {
  readonly IDLE: "idle";
  readonly CONNECTING: "connecting";
  readonly CONNECTED: "connected";
  readonly RECONNECTING: "reconnecting";
  readonly OFFLINE: "offline";
  readonly CLOSED: "closed";
};
export type StateName = (typeof State)[keyof typeof State];
export type TransportName = "websocket" | "sse" | "longpoll";

export interface Message {
  conv: string;
  seq: number;
  sender: string;
  client_msg_id: string;
  body: string;
  meta?: unknown;
  /** Server time, Unix milliseconds. */
  ts: number;
}

export interface Conversation {
  id: string;
  kind: "direct" | "group";
  title?: string;
  role: "owner" | "member";
  members: string[];
  last_seq: number;
  read_seq: number;
  delivered_seq: number;
  unread: number;
  created_at: number;
  /** Member -> read seq (you included); kept up to date from receipts. Absent in some conversation events. */
  reads?: Record<string, number>;
}

export interface Ack {
  type: "ack";
  id: string;
  conv: string;
  seq: number;
  client_msg_id: string;
  ts: number;
  duplicate?: boolean;
}

export interface Welcome {
  type: "welcome";
  protocol: string;
  user: string;
  session: string;
  server_time: number;
  conversations: Conversation[];
  limits: Record<string, number>;
}

export interface StateEvent {
  state: StateName;
  transport?: TransportName;
  attempt?: number;
  delay?: number;
  code?: number;
  reason?: string;
}

export interface Receipt { type: "receipt"; conv: string; user: string; seq: number }
export interface Typing { type: "typing"; conv: string; user: string; ttl_ms: number }
export interface Presence { type: "presence"; user: string; online: boolean; last_seen: number }
export interface ChannelMessage { type: "channel.message"; channel: string; offset: number; data: unknown; ts: number }
/** `by` is absent when a long-poll reports your removal from a conversation that happened before it. */
export interface MemberEvent { type: "member"; conv: string; user: string; action: "added" | "removed"; by?: string }
export interface Pending { conv: string; clientMsgId: string; body: string; meta?: unknown }

export interface Events {
  state: StateEvent;
  welcome: Welcome;
  message: Message;
  pending: Pending;
  ack: Ack;
  receipt: Receipt;
  typing: Typing;
  presence: Presence;
  channel: ChannelMessage;
  member: MemberEvent;
  conversation: Conversation;
  error: Error;
}

export interface DuplexOptions {
  /** Server base URL; default location.origin. */
  url?: string;
  /** Bearer token (JWT). */
  token?: string;
  /** Called for a token when none is set or after close code 4001; if it throws, the client retries with backoff. */
  getToken?: () => Promise<string>;
  /** Transports in order of preference; default all three. GET /api/info lists those the server serves. */
  transports?: TransportName[];
  /** Per-conversation seqs saved from a previous run (ResumeTracker.snapshot). */
  seqs?: Record<string, number>;
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** While on a fallback transport, how often to try the preferred transports again. */
  upgradeProbeMs?: number;
  backoff?: { base?: number; cap?: number };
  queueLimit?: number;
}

export declare class Emitter {
  on<K extends keyof Events>(type: K, fn: (value: Events[K]) => void): () => void;
  off<K extends keyof Events>(type: K, fn: (value: Events[K]) => void): void;
  emit<K extends keyof Events>(type: K, value: Events[K]): void;
}

export declare class Duplex extends Emitter {
  constructor(opts?: DuplexOptions);
  readonly state: StateName;
  readonly user?: string;
  /** The token in use. After the server refused it (state closed, code 4000), set a new one and call connect(). */
  token?: string;
  readonly conversations: Map<string, Conversation>;
  /** user -> online, from presence() results and presence events; long-polls send it. */
  readonly presenceKnown: Map<string, boolean>;
  readonly resume: ResumeTracker;
  connect(): void;
  close(): void;
  send(conv: string, body: string, opts?: { meta?: unknown; clientMsgId?: string }): Promise<Ack>;
  history(conv: string, opts?: { before?: number; limit?: number }): Promise<Message[]>;
  read(conv: string, seq: number): Promise<unknown>;
  typing(conv: string): Promise<unknown>;
  createDirect(peer: string): Promise<Conversation>;
  createGroup(title: string, members: string[]): Promise<Conversation>;
  subscribe(channel: string, opts?: { since?: number }): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  publish(channel: string, data: unknown): Promise<unknown>;
  presence(users: string[]): Promise<{ presence?: Presence[] } | Presence[]>;
  request(frame: Record<string, unknown>): Promise<any>;
}

export declare class ResumeTracker {
  restore(seqs: Record<string, number>): void;
  snapshot(): Record<string, number>;
  seq(conv: string): number | undefined;
  /** Forgets a conversation (done for you when you are removed from it). */
  forget(conv: string): void;
}

export declare class OutgoingQueue {
  readonly size: number;
}

export declare class DuplexError extends Error {
  readonly code: string;
}
export declare class TransportError extends Error {
  readonly code: number;
}

export declare function closeAction(code: number): "retry" | "refresh" | "stop";
export declare function backoffDelay(attempt: number, opts?: { base?: number; cap?: number; random?: () => number }): number;
/** A fresh client message id: a time-ordered UUID version 7. */
export declare function newClientMsgId(): string;
