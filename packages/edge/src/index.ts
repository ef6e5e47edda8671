export { renderEdgeConfig, renderStandaloneNginx, upstreamOf } from './nginx-config';
export type { EdgeNode, EdgeSite, RenderedEdge } from './nginx-config';
export { EdgeSync } from './edge-sync';
export type { EdgeLogger, EdgeSyncOptions } from './edge-sync';
export { edgeConfigFromEnv } from './config';
export type { EdgeConfig } from './config';
