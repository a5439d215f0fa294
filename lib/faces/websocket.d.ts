// Types for `ferrows/websocket`: the server side of WebSocket-Node 1.0 (server, request, connection, router),
// shaped as @types/websocket declares it, plus ferrows's additions (topics, backplane).
/// <reference types="node" />

import { EventEmitter } from 'events';
import * as http from 'http';
import * as https from 'https';
import { Duplex } from 'stream';
import { Url } from 'url';
import type { LimitOptions, Operations } from '../operations';

export interface IServerConfig extends LimitOptions {
  httpServer: http.Server | https.Server | Array<http.Server | https.Server>;
  maxReceivedFrameSize?: number | undefined;
  maxReceivedMessageSize?: number | undefined;
  fragmentOutgoingMessages?: boolean | undefined;
  fragmentationThreshold?: number | undefined;
  keepalive?: boolean | undefined;
  keepaliveInterval?: number | undefined;
  dropConnectionOnKeepaliveTimeout?: boolean | undefined;
  keepaliveGracePeriod?: number | undefined;
  useNativeKeepalive?: boolean | undefined;
  assembleFragments?: boolean | undefined;
  autoAcceptConnections?: boolean | undefined;
  ignoreXForwardedFor?: boolean | undefined;
  parseCookies?: boolean | undefined;
  parseExtensions?: boolean | undefined;
  disableNagleAlgorithm?: boolean | undefined;
  closeTimeout?: number | undefined;
  /** ferrows: bytes queued for a connection before it is not read (default 1 MiB). */
  maxBackpressure?: number | undefined;
  /** ferrows: close such a connection with 1008 instead of pausing it. */
  closeOnBackpressureLimit?: boolean | undefined;
  /** ferrows: span processes over Redis. */
  backplane?: { redis?: string; name?: string; maxLen?: number; queueLimit?: number; required?: boolean } | undefined;
}

export interface ICookie {
  name: string;
  value: string;
  path?: string | undefined;
  domain?: string | undefined;
  expires?: Date | undefined;
  maxage?: number | undefined;
  secure?: boolean | undefined;
  httponly?: boolean | undefined;
}

export interface IExtension {
  name: string;
  params: Array<{ name: string; value?: string | undefined }>;
}

export interface Message {
  type: 'utf8' | 'binary';
  utf8Data?: string;
  binaryData?: Buffer;
}

export interface IUtf8Message { type: 'utf8'; utf8Data: string }
export interface IBinaryMessage { type: 'binary'; binaryData: Buffer }

export interface server extends Operations {}
export class server extends EventEmitter {
  config?: IServerConfig | undefined;
  connections: connection[];
  pendingRequests: request[];
  constructor(serverConfig?: IServerConfig);
  mount(serverConfig: IServerConfig): void;
  unmount(): void;
  closeAllConnections(): void;
  broadcast(data: Buffer | string): void;
  broadcastUTF(data: string): void;
  broadcastBytes(data: Buffer): void;
  shutDown(): void;
  handleUpgrade(request: http.IncomingMessage, socket: Duplex, head?: Buffer): void;
  /** ferrows: every subscriber of `topic` gets `data` (in every process of a backplane). */
  publish(topic: string, data: string | Buffer): { sent: number; skipped: number };

  on(event: 'request', cb: (request: request) => void): this;
  on(event: 'connect', cb: (connection: connection) => void): this;
  on(event: 'close', cb: (connection: connection, reason: number, desc: string) => void): this;
  on(event: 'upgradeError', cb: (err: Error) => void): this;
  on(event: 'backplane', cb: (state: 'up' | 'down' | 'error', error?: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class request extends EventEmitter {
  httpRequest: http.IncomingMessage;
  host: string;
  resource: string;
  resourceURL: Url;
  remoteAddress: string;
  remoteAddresses: string[];
  webSocketVersion: number;
  origin: string;
  requestedExtensions: IExtension[];
  requestedProtocols: string[];
  cookies: ICookie[];
  key: string;
  accept(acceptedProtocol?: string | null, allowedOrigin?: string, cookies?: ICookie[]): connection;
  reject(httpStatus?: number, reason?: string, extraHeaders?: object): void;
  on(event: 'requestAccepted', cb: (connection: connection) => void): this;
  on(event: 'requestRejected', cb: (request: this) => void): this;
  on(event: 'requestResolved', cb: (request: this) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class connection extends EventEmitter {
  static CLOSE_REASON_NORMAL: number;
  static CLOSE_REASON_GOING_AWAY: number;
  static CLOSE_REASON_PROTOCOL_ERROR: number;
  static CLOSE_REASON_UNPROCESSABLE_INPUT: number;
  static CLOSE_REASON_RESERVED: number;
  static CLOSE_REASON_NOT_PROVIDED: number;
  static CLOSE_REASON_ABNORMAL: number;
  static CLOSE_REASON_INVALID_DATA: number;
  static CLOSE_REASON_POLICY_VIOLATION: number;
  static CLOSE_REASON_MESSAGE_TOO_BIG: number;
  static CLOSE_REASON_EXTENSION_REQUIRED: number;
  static CLOSE_REASON_INTERNAL_SERVER_ERROR: number;
  static CLOSE_REASON_TLS_HANDSHAKE_FAILED: number;
  static CLOSE_DESCRIPTIONS: { [code: number]: string };
  connected: boolean;
  state: 'open' | 'peer_requested_close' | 'ending' | 'closed';
  protocol: string | undefined;
  extensions: IExtension[];
  remoteAddress: string;
  webSocketVersion: number;
  closeReasonCode: number;
  closeDescription: string | null;
  socket: { remoteAddress: string; remotePort: number; localAddress: string; localPort: number };
  send(data: Buffer | { toString(): string }, cb?: (err?: Error) => void): void;
  sendUTF(data: { toString(): string }, cb?: (err?: Error) => void): void;
  sendBytes(buffer: Buffer, cb?: (err?: Error) => void): void;
  ping(data?: Buffer | string): void;
  pong(data?: Buffer | string): void;
  pause(): void;
  resume(): void;
  close(reasonCode?: number, description?: string): void;
  drop(reasonCode?: number, description?: string, skipCloseFrame?: boolean): void;
  /** ferrows: joins `topic` (see server#publish); false if already subscribed or closed. */
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  readonly topics: string[];

  on(event: 'message', cb: (data: Message) => void): this;
  on(event: 'frame', cb: (frame: { opcode: number; fin: boolean; binaryPayload: Buffer }) => void): this;
  on(event: 'close', cb: (code: number, desc: string) => void): this;
  on(event: 'error', cb: (err: Error) => void): this;
  on(event: 'drain' | 'pause' | 'resume', cb: () => void): this;
  on(event: 'ping', cb: (cancel: () => void, data: Buffer) => void): this;
  on(event: 'pong', cb: (data: Buffer) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface IRouterRequest extends EventEmitter {
  webSocketRequest: request;
  protocol: string | null;
  origin: string;
  resource: string;
  resourceURL: Url;
  httpRequest: http.IncomingMessage;
  remoteAddress: string;
  webSocketVersion: number;
  requestedExtensions: IExtension[];
  cookies: ICookie[];
  accept(origin?: string, cookies?: ICookie[]): connection;
  reject(httpStatus?: number, reason?: string): void;
}

export class router extends EventEmitter {
  constructor(config?: { server?: server });
  attachServer(server: server): void;
  detachServer(): void;
  mount(path: string | RegExp, protocol: string | null, callback: (request: IRouterRequest) => void): void;
  unmount(path: string | RegExp, protocol?: string): void;
}

export const version: string;
