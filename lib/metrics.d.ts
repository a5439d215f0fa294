// Types for `ferrows/metrics`: Prometheus collectors (prom-client) reading a server's stats().
import type { Registry } from 'prom-client';

/** Any face's server: it has stats(). */
export interface ReportedServer {
  stats(): object;
}

/** Reports `server` in `registry` (prom-client's default one if absent); returns a function that stops it. */
export function register(server: ReportedServer, registry?: Registry, options?: { name?: string }): () => boolean;

/** The metric names, for dashboards. */
export const METRIC_NAMES: readonly string[];
