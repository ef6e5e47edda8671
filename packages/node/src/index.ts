export { ChatNode } from './chat-node';
export type { ChatNodeDeps } from './chat-node';
export { ListenError, startServer } from './server';
export type { OpsEndpoints, RunningServer, ServerOptions } from './server';
export { NodeMetrics } from './metrics';
export type { MetricSources, NodeMetricsOptions } from './metrics';
export { Readiness } from './readiness';
export type { ReadinessOptions, ReadyStatus } from './readiness';
export {
  nodeConfigFromEnv,
  defaultNodeConfig,
  DEV_SECRET,
  loggableConfig,
  maskUrlPassword,
} from './config';
export type { NodeConfig, LoadedConfig } from './config';
export { systemClock } from './clock';
export type { Clock } from './clock';
export { singleNodeOwnership, localFabric } from './routing';
export type { Ownership, DeliveryFabric, LocalDeliverer } from './routing';
export { loadNativeUws } from './uws';
