// Types for `ferrows/ws`: the server side of ws 8, shaped as @types/ws declares it so that a TypeScript server
// written for ws compiles with only its import changed, plus ferrows's additions (topics, broadcast, backplane).
/// <reference types="node" />

import { EventEmitter } from 'events';
import { IncomingMessage, OutgoingHttpHeaders, Server as HttpServer } from 'http';
import { Server as HttpsServer } from 'https';
import { Duplex, DuplexOptions } from 'stream';
import type { LimitOptions, Operations } from '../operations';

type HttpOrHttpsServer = HttpServer | HttpsServer;

declare class WebSocket extends EventEmitter {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  /** Server-side connections are made by WebSocketServer; `new WebSocket(url)` needs ws's client. */
  constructor(address: null, protocols?: undefined, options?: WebSocket.ServerOptions);

  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments';
  readonly bufferedAmount: number;
  readonly extensions: string;
  readonly isPaused: boolean;
  readonly protocol: string;
  readonly readyState: typeof WebSocket.CONNECTING | typeof WebSocket.OPEN | typeof WebSocket.CLOSING | typeof WebSocket.CLOSED;
  readonly url: string;

  onopen: ((event: WebSocket.Event) => void) | null;
  onerror: ((event: WebSocket.ErrorEvent) => void) | null;
  onclose: ((event: WebSocket.CloseEvent) => void) | null;
  onmessage: ((event: WebSocket.MessageEvent) => void) | null;

  close(code?: number, data?: string | Buffer): void;
  ping(data?: any, mask?: boolean, cb?: (err: Error) => void): void;
  pong(data?: any, mask?: boolean, cb?: (err: Error) => void): void;
  send(data: WebSocket.Data | Blob, cb?: (err?: Error) => void): void;
  send(
    data: WebSocket.Data | Blob,
    options: { mask?: boolean | undefined; binary?: boolean | undefined; compress?: boolean | undefined; fin?: boolean | undefined },
    cb?: (err?: Error) => void,
  ): void;
  terminate(): void;
  pause(): void;
  resume(): void;

  addEventListener<K extends keyof WebSocket.WebSocketEventMap>(
    type: K,
    listener: ((event: WebSocket.WebSocketEventMap[K]) => void) | { handleEvent(event: WebSocket.WebSocketEventMap[K]): void },
    options?: WebSocket.EventListenerOptions,
  ): void;
  removeEventListener<K extends keyof WebSocket.WebSocketEventMap>(
    type: K,
    listener: ((event: WebSocket.WebSocketEventMap[K]) => void) | { handleEvent(event: WebSocket.WebSocketEventMap[K]): void },
  ): void;

  on(event: 'close', listener: (this: WebSocket, code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (this: WebSocket, error: Error) => void): this;
  on(event: 'message', listener: (this: WebSocket, data: WebSocket.RawData, isBinary: boolean) => void): this;
  on(event: 'open', listener: (this: WebSocket) => void): this;
  on(event: 'ping' | 'pong', listener: (this: WebSocket, data: Buffer) => void): this;
  on(event: string | symbol, listener: (this: WebSocket, ...args: any[]) => void): this;
  once(event: 'close', listener: (this: WebSocket, code: number, reason: Buffer) => void): this;
  once(event: 'error', listener: (this: WebSocket, error: Error) => void): this;
  once(event: 'message', listener: (this: WebSocket, data: WebSocket.RawData, isBinary: boolean) => void): this;
  once(event: 'open', listener: (this: WebSocket) => void): this;
  once(event: 'ping' | 'pong', listener: (this: WebSocket, data: Buffer) => void): this;
  once(event: string | symbol, listener: (this: WebSocket, ...args: any[]) => void): this;
  off(event: 'close', listener: (this: WebSocket, code: number, reason: Buffer) => void): this;
  off(event: 'error', listener: (this: WebSocket, error: Error) => void): this;
  off(event: 'message', listener: (this: WebSocket, data: WebSocket.RawData, isBinary: boolean) => void): this;
  off(event: 'open', listener: (this: WebSocket) => void): this;
  off(event: 'ping' | 'pong', listener: (this: WebSocket, data: Buffer) => void): this;
  off(event: string | symbol, listener: (this: WebSocket, ...args: any[]) => void): this;

  /** ferrows: joins `topic` (see WebSocketServer#publish); false if already subscribed or closed. */
  subscribe(topic: string): boolean;
  /** ferrows: leaves `topic`; false if not subscribed. */
  unsubscribe(topic: string): boolean;
  /** ferrows: the topics this connection is subscribed to. */
  readonly topics: string[];
}

declare namespace WebSocket {
  type RawData = Buffer | ArrayBuffer | Buffer[];
  type Data = string | Buffer | ArrayBuffer | Buffer[] | ArrayBufferView | number;

  interface EventListenerOptions {
    once?: boolean | undefined;
  }

  interface Event {
    type: string;
    target: WebSocket;
  }
  interface ErrorEvent {
    error: any;
    message: string;
    type: string;
    target: WebSocket;
  }
  interface CloseEvent {
    wasClean: boolean;
    code: number;
    reason: string;
    type: string;
    target: WebSocket;
  }
  interface MessageEvent {
    data: Data;
    type: string;
    target: WebSocket;
  }
  interface WebSocketEventMap {
    open: Event;
    error: ErrorEvent;
    close: CloseEvent;
    message: MessageEvent;
  }

  type VerifyClientCallbackSync<Request extends IncomingMessage = IncomingMessage> = (info: {
    origin: string;
    secure: boolean;
    req: Request;
  }) => boolean;
  type VerifyClientCallbackAsync<Request extends IncomingMessage = IncomingMessage> = (
    info: { origin: string; secure: boolean; req: Request },
    callback: (res: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void,
  ) => void;

  interface PerMessageDeflateOptions {
    serverNoContextTakeover?: boolean | undefined;
    clientNoContextTakeover?: boolean | undefined;
    serverMaxWindowBits?: number | undefined;
    clientMaxWindowBits?: number | undefined;
    zlibDeflateOptions?: { level?: number | undefined; [option: string]: any } | undefined;
    zlibInflateOptions?: { [option: string]: any } | undefined;
    threshold?: number | undefined;
    /** Accepted; compression runs natively without a zlib thread pool. */
    concurrencyLimit?: number | undefined;
  }

  /** ferrows: broadcasts and topics across processes over Redis Streams. */
  interface BackplaneOptions {
    redis?: string | undefined;
    name?: string | undefined;
    maxLen?: number | undefined;
    queueLimit?: number | undefined;
    required?: boolean | undefined;
  }

  interface ServerOptions<U extends typeof WebSocket = typeof WebSocket, V extends typeof IncomingMessage = typeof IncomingMessage>
    extends LimitOptions {
    host?: string | undefined;
    port?: number | undefined;
    backlog?: number | undefined;
    server?: HttpOrHttpsServer | undefined;
    verifyClient?: VerifyClientCallbackAsync<InstanceType<V>> | VerifyClientCallbackSync<InstanceType<V>> | undefined;
    handleProtocols?: ((protocols: Set<string>, request: InstanceType<V>) => string | false) | undefined;
    path?: string | undefined;
    noServer?: boolean | undefined;
    allowSynchronousEvents?: boolean | undefined;
    autoPong?: boolean | undefined;
    clientTracking?: boolean | undefined;
    perMessageDeflate?: boolean | PerMessageDeflateOptions | undefined;
    maxPayload?: number | undefined;
    skipUTF8Validation?: boolean | undefined;
    closeTimeout?: number | undefined;
    WebSocket?: U | undefined;
    /** ferrows: bytes queued for a connection before it is not read (default 1 MiB). */
    maxBackpressure?: number | undefined;
    /** ferrows: close such a connection with 1008 instead of pausing it. */
    closeOnBackpressureLimit?: boolean | undefined;
    /** ferrows: span processes over Redis. */
    backplane?: BackplaneOptions | undefined;
  }

  interface AddressInfo {
    address: string;
    family: string;
    port: number;
  }

  /** ferrows: what a broadcast or publication did in this process. */
  interface Delivery {
    sent: number;
    skipped: number;
  }

  interface Server<T extends typeof WebSocket = typeof WebSocket, U extends typeof IncomingMessage = typeof IncomingMessage>
    extends Operations {}
  class Server<T extends typeof WebSocket = typeof WebSocket, U extends typeof IncomingMessage = typeof IncomingMessage> extends EventEmitter {
    options: ServerOptions<T, U>;
    path: string;
    clients: Set<InstanceType<T>>;

    constructor(options?: ServerOptions<T, U>, callback?: () => void);

    address(): AddressInfo | string | null;
    close(cb?: (err?: Error) => void): void;
    handleUpgrade(request: InstanceType<U>, socket: Duplex, upgradeHead: Buffer, callback: (client: InstanceType<T>, request: InstanceType<U>) => void): void;
    shouldHandle(request: InstanceType<U>): boolean | Promise<boolean>;

    /** ferrows: every subscriber of `topic` gets `data` (in every process of a backplane). */
    publish(topic: string, data: Data): Delivery;
    /** ferrows: every connection gets `data`; the frame is built once. */
    broadcast(data: Data): Delivery;

    on(event: 'connection', cb: (this: Server<T>, socket: InstanceType<T>, request: InstanceType<U>) => void): this;
    on(event: 'error', cb: (this: Server<T>, error: Error) => void): this;
    on(event: 'headers', cb: (this: Server<T>, headers: string[], request: InstanceType<U>) => void): this;
    on(event: 'close' | 'listening', cb: (this: Server<T>) => void): this;
    on(event: 'wsClientError', cb: (this: Server<T>, error: Error, socket: Duplex, request: InstanceType<U>) => void): this;
    on(event: 'backplane', cb: (this: Server<T>, state: 'up' | 'down' | 'error', error?: Error) => void): this;
    on(event: string | symbol, listener: (this: Server<T>, ...args: any[]) => void): this;
    once(event: 'connection', cb: (this: Server<T>, socket: InstanceType<T>, request: InstanceType<U>) => void): this;
    once(event: 'error', cb: (this: Server<T>, error: Error) => void): this;
    once(event: 'headers', cb: (this: Server<T>, headers: string[], request: InstanceType<U>) => void): this;
    once(event: 'close' | 'listening', cb: (this: Server<T>) => void): this;
    once(event: string | symbol, listener: (this: Server<T>, ...args: any[]) => void): this;
    off(event: 'connection', cb: (this: Server<T>, socket: InstanceType<T>, request: InstanceType<U>) => void): this;
    off(event: 'error', cb: (this: Server<T>, error: Error) => void): this;
    off(event: 'headers', cb: (this: Server<T>, headers: string[], request: InstanceType<U>) => void): this;
    off(event: 'close' | 'listening', cb: (this: Server<T>) => void): this;
    off(event: string | symbol, listener: (this: Server<T>, ...args: any[]) => void): this;
  }

  const WebSocketServer: typeof Server;
  interface WebSocketServer<T extends typeof WebSocket = typeof WebSocket, U extends typeof IncomingMessage = typeof IncomingMessage>
    extends Server<T, U> {}
  const WebSocket: typeof WebSocketAlias;
  interface WebSocket extends WebSocketAlias {}

  function createWebSocketStream(websocket: WebSocket, options?: DuplexOptions): Duplex;

  /** ferrows: every copy of ws loaded with require() from now on gets ferrows's server class. */
  function replaceWsServer(): void;
}

declare const WebSocketAlias: typeof WebSocket;
interface WebSocketAlias extends WebSocket {}

export = WebSocket;
