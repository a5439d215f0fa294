// Types for the sack-style face (index.js).

import type { LimitOptions, Operations } from './lib/operations';

export type ReadyState = -1 | 0 | 1 | 2 | 3 | 4;

export interface ReadyStates {
  readonly INITIALIZING: -1;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
  readonly LISTENING: 4;
}

export interface ServerOptions extends LimitOptions {
  /** URL to listen at, e.g. 'ws://[::]:8080/'. */
  url?: string;
  /** Address to bind; default '::' (IPv6 and IPv4). */
  address?: string;
  /** Port; default 8080; 0 picks a free port. */
  port?: number;
  /** Mask frames sent by the server (default false; browsers refuse masked server frames). */
  masking?: boolean;
  perMessageDeflate?: boolean;
  perMessageDeflateAllow?: boolean;
  /** Largest message accepted, in bytes (default 16 MiB); larger ones close the connection with 1009. */
  maxPayload?: number;
  maxReceivedFrameSize?: number;
  maxReceivedMessageSize?: number;
  /** TCP_NODELAY on accepted sockets (default true). */
  noDelay?: boolean;
  /** Worker threads of the native runtime (default min(cores, 4); FERROWS_THREADS overrides). */
  threads?: number;
  /** Milliseconds a client has to complete its upgrade request (default 10000). */
  handshakeTimeout?: number;
  /** Milliseconds the peer has to answer a close frame (default 5000). */
  closeTimeout?: number;
  /** Largest plain HTTP request body accepted, in bytes (default 1 MiB; 413 above). */
  maxBodySize?: number;
  /** A connection with more than this many bytes queued is skipped by broadcast() and publish() (default: maxBackpressure). */
  broadcastLimit?: number;
  /** A connection with more than this many bytes queued is not read until half of it drained (default 1 MiB). */
  maxBackpressure?: number;
  /** Close such a connection with 1008 instead of pausing it (default false). */
  closeOnBackpressureLimit?: boolean;
  /** Share the port with other processes (SO_REUSEPORT); default: true in node:cluster workers. */
  reusePort?: boolean;
  /** broadcast() and publish() reach the servers of every process naming the same backplane, over Redis. */
  backplane?: BackplaneOptions;
  cert?: string | Buffer;
  key?: string | Buffer;
  ca?: string | Buffer;
  passphrase?: string;
  host?: string;
  hosts?: Array<{ host: string | string[]; cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; passphrase?: string }>;
}

export interface BackplaneOptions {
  /** A redis:// URL (default redis://127.0.0.1:6379). */
  redis?: string;
  /** Servers with the same name share one Redis Stream (default 'ferrows'). */
  name?: string;
  /** Entries the stream keeps, about: the window a reconnecting process catches up on (default 10000). */
  maxLen?: number;
  /** Bytes of publications held while Redis is unreachable; the oldest are dropped beyond it (default 16 MiB). */
  queueLimit?: number;
  /** Make Server() throw when Redis does not answer at start (default: start and report 'down'). */
  required?: boolean;
}

export type BackplaneState = 'up' | 'down' | 'error';

export interface SendResult {
  /** Connections of this server that got the message. */
  sent: number;
  /** Connections of this server skipped for having more than broadcastLimit bytes queued. */
  skipped: number;
}

export interface ConnectionInfo {
  remoteFamily: string;
  remoteAddress: string;
  remotePort: number;
  localFamily: string;
  localAddress: string;
  localPort: number;
  headers: Record<string, string>;
  hostname: string | undefined;
}

export interface AddressInfo {
  address: string;
  port: number;
  family: string;
}

// `obj.onX = fn` registers fn, and so does `obj.onX(fn)` (sack's README style).
export interface Connection {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly CGI: Record<string, string>;
  readonly connection: ConnectionInfo;
  /** Sub-protocols the client offered. */
  readonly protocols: string[];
  /** The sub-protocol chosen at accept, if any. */
  readonly protocol: string | undefined;
  readonly readyState: ReadyState;
  readonly bufferedAmount: number;
  readonly OPEN: 1;
  readonly CLOSED: 3;
  readonly CLOSING: 2;
  readonly CONNECTING: 0;
  readonly INITIALIZING: -1;
  noDelay: boolean;
  aggregate: boolean;
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  ping(data?: string | ArrayBuffer | ArrayBufferView): void;
  block(): void;
  resume(): void;
  /** Hands the connection to a thread waiting in Thread.accept(name). */
  post(name: string, options?: { queue?: boolean }): boolean;
  /** Joins a topic (a non-empty string of at most 256 bytes); false if already subscribed. */
  subscribe(topic: string): boolean;
  /** Leaves a topic; false if not subscribed. */
  unsubscribe(topic: string): boolean;
  /** The topics this connection is subscribed to. */
  readonly topics: string[];
  on(event: 'message', fn: (this: Connection, msg: string | ArrayBuffer) => void): this;
  on(event: 'close', fn: (this: Connection, code: number, reason: string | null) => void): this;
  on(event: 'error' | 'drain', fn: (this: Connection) => void): this;
  on(event: 'ping' | 'pong', fn: (this: Connection, data: ArrayBuffer) => void): this;
  get onmessage(): (fn: (this: Connection, msg: string | ArrayBuffer) => void) => void;
  set onmessage(fn: (this: Connection, msg: string | ArrayBuffer) => void);
  get onclose(): (fn: (this: Connection, code: number, reason: string | null) => void) => void;
  set onclose(fn: (this: Connection, code: number, reason: string | null) => void);
  get onerror(): (fn: (this: Connection) => void) => void;
  set onerror(fn: (this: Connection) => void);
  get ondrain(): (fn: (this: Connection) => void) => void;
  set ondrain(fn: (this: Connection) => void);
}

export interface Server extends Operations {
  readonly readyState: ReadyState;
  readonly port: number;
  address(): AddressInfo;
  /** Only inside an `accept` handler: complete the upgrade, optionally with a sub-protocol. */
  accept(protocol?: string): void;
  /** Only inside an `accept` handler: refuse the upgrade (HTTP 403 unless a status is given). */
  reject(status?: number): void;
  close(): void;
  /** Sends to every open connection, and to every server on the backplane; the frame is built once. */
  broadcast(data: string | ArrayBuffer | ArrayBufferView): SendResult;
  /** Sends to the connections subscribed to `topic`, here and on every server on the backplane. */
  publish(topic: string, data: string | ArrayBuffer | ArrayBufferView): SendResult;
  /** During lowError 1: go on in plain text with this client. */
  disableSSL(): void;
  /** During lowError 1: close this client. */
  rejectSSL(): void;
  on(event: 'accept', fn: (this: Server, ws: Connection) => void | Promise<unknown>): this;
  on(event: 'connect', fn: (this: Connection, ws: Connection) => void): this;
  on(event: 'close', fn: (this: Server) => void): this;
  on(event: 'backplane', fn: (this: Server, state: BackplaneState, err?: Error) => void): this;
  on(event: 'request' | 'error' | 'lowError', fn: (this: Server, ...args: any[]) => void): this;
  get onaccept(): (fn: (this: Server, ws: Connection) => void | Promise<unknown>) => void;
  set onaccept(fn: (this: Server, ws: Connection) => void | Promise<unknown>);
  get onconnect(): (fn: (this: Connection, ws: Connection) => void) => void;
  set onconnect(fn: (this: Connection, ws: Connection) => void);
  get onclose(): (fn: (this: Server) => void) => void;
  set onclose(fn: (this: Server) => void);
  get onrequest(): (fn: (this: Server, ...args: any[]) => void) => void;
  set onrequest(fn: (this: Server, ...args: any[]) => void);
  get onerror(): (fn: (this: Server, ...args: any[]) => void) => void;
  set onerror(fn: (this: Server, ...args: any[]) => void);
  get onlowError(): (fn: (this: Server, ...args: any[]) => void) => void;
  set onlowError(fn: (this: Server, ...args: any[]) => void);
  get onbackplane(): (fn: (this: Server, state: BackplaneState, err?: Error) => void) => void;
  set onbackplane(fn: (this: Server, state: BackplaneState, err?: Error) => void);
}

export interface ServerConstructor {
  (options: ServerOptions, onconnect?: (this: Connection, ws: Connection) => void): Server;
  (url: string, options?: ServerOptions): Server;
  (port: number, options?: ServerOptions): Server;
  new (options: ServerOptions, onconnect?: (this: Connection, ws: Connection) => void): Server;
  new (url: string, options?: ServerOptions): Server;
  new (port: number, options?: ServerOptions): Server;
}

export interface ThreadApi {
  post(name: string, ws: Connection, options?: { queue?: boolean }): boolean;
  accept(name: string, cb: (this: Connection, name: string, ws: Connection) => void, options?: { persistent?: boolean }): void;
  cancel(name: string): void;
}

export declare const WebSocket: {
  Server: ServerConstructor;
  readyStates: ReadyStates;
  Thread: ThreadApi;
};
