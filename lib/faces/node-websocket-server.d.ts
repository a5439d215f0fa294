// Types for `ferrows/node-websocket-server`: node-websocket-server's API (createServer, Server, connections
// with ids and states), plus ferrows's additions (topics, backplane).
/// <reference types="node" />

import { EventEmitter } from 'events';
import * as http from 'http';
import type { LimitOptions, Operations } from '../operations';

export interface ServerOptions extends LimitOptions {
  /** An http.Server to attach to (else one is made). */
  server?: http.Server | undefined;
  /** Origins allowed ('*' for any); others get 403. */
  origin?: string | string[] | undefined;
  /** Sub-protocols the server speaks. */
  subprotocol?: string | string[] | undefined;
  debug?: boolean | undefined;
  /** ferrows: bytes queued for a connection before it is not read (default 1 MiB). */
  maxBackpressure?: number | undefined;
  /** ferrows: close such a connection with 1008 instead of pausing it. */
  closeOnBackpressureLimit?: boolean | undefined;
  /** ferrows: span processes over Redis. */
  backplane?: { redis?: string; name?: string; maxLen?: number; queueLimit?: number; required?: boolean } | undefined;
}

/** The library's states: 1 opening, 4 connected, 5 closed. */
export type ConnectionState = 0 | 1 | 4 | 5;

export declare class Connection extends EventEmitter {
  readonly id: number;
  readonly readyState: ConnectionState;
  version: 'rfc6455';
  getVersion(): string;
  /** Sends text; false when not connected. */
  write(data: unknown): boolean;
  send(data: unknown): boolean;
  /** Sends to every other connected client. */
  broadcast(data: unknown): void;
  close(): void;
  reject(reason?: string): void;
  /** ferrows: joins `topic` (see Server#publish). */
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  readonly topics: string[];
  on(event: 'message', listener: (message: string) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'stateChange', listener: (state: ConnectionState, previous: ConnectionState) => void): this;
  on(event: 'rejected', listener: (reason?: string) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface Server extends Operations {}
export declare class Server extends EventEmitter {
  constructor(options?: ServerOptions);
  readonly server: http.Server;
  readonly options: ServerOptions;
  listen(port?: number, host?: string, callback?: () => void): this;
  listen(...args: any[]): this;
  close(): void;
  /** Sends to the connection with this id. */
  send(id: number, data: unknown): void;
  /** Every connected client gets `data`, in every process of a backplane. */
  broadcast(data: unknown): void;
  /** ferrows: every subscriber of `topic` gets `data`. */
  publish(topic: string, data: string | Buffer): { sent: number; skipped: number };
  readonly manager: {
    forEach(fn: (connection: Connection) => void): void;
    find(id: number, fn: (connection: Connection | undefined) => void): void;
  };
  on(event: 'connection' | 'disconnect', listener: (connection: Connection) => void): this;
  on(event: 'close', listener: (connection?: Connection) => void): this;
  on(event: 'listening' | 'shutdown', listener: () => void): this;
  on(event: 'request', listener: (req: http.IncomingMessage, res: http.ServerResponse) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'backplane', listener: (state: 'up' | 'down' | 'error', error?: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export declare function createServer(options?: ServerOptions): Server;
