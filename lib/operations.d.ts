// Types shared by every face's server: the limit options, stats(), presence and drain().

export interface LimitOptions {
  /** Upgrades beyond this many open connections get 503 with Retry-After. */
  maxConnections?: number | undefined;
  /** The same, per client address. */
  maxConnectionsPerIp?: number | undefined;
  /** Messages a connection may send per second (a second's worth at once). */
  maxMessagesPerSecond?: number | undefined;
  /** Bytes of messages a connection may send per second. */
  maxBytesPerSecond?: number | undefined;
  /** Over a rate limit: close with 1008 (default) or pause reading. */
  rateLimit?: 'close' | 'pause' | undefined;
  /** Seconds without receiving anything before the connection is closed with 1001. */
  idleTimeout?: number | undefined;
  /** Ping quiet connections before idleTimeout closes them (default true). */
  sendPingsAutomatically?: boolean | undefined;
  /** Minutes after which a connection is closed with 1001. */
  maxLifetime?: number | undefined;
}

export interface CloseCodeCount {
  code: number;
  count: number;
}

export interface ServerStats {
  connections: number;
  accepted: number;
  refused: { invalid: number; limit: number; application: number; closing: number };
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  framesCompressed: number;
  bytesSaved: number;
  backpressurePauses: number;
  rateLimited: number;
  skipped: number;
  closeCodesSent: CloseCodeCount[];
  closeCodesReceived: CloseCodeCount[];
  backplane?: { state: 'up' | 'down' | 'unknown'; queuedBytes: number; dropped: number };
}

export interface DrainOptions {
  /** Close code (default 1001). */
  code?: number | undefined;
  /** Close reason (default 'server restarting'). */
  reason?: string | undefined;
  /** Milliseconds to spread the closes over (default 10000). */
  within?: number | undefined;
}

export interface Operations {
  stats(): ServerStats;
  /** Stops accepting, closes every connection spread over `within`; resolves when all are gone. */
  drain(options?: DrainOptions): Promise<void>;
  /** Subscribers of `topic` in this process. */
  subscribers(topic: string): number;
  /** Subscribers of `topic` in every process on the backplane (this process's without one). */
  subscriberCount(topic: string): Promise<number>;
  /** Topics with subscribers in this process. */
  topicList(): string[];
}
