export { startRegistry } from './server';
export type { RegistryOptions, RunningRegistry } from './server';
export { VAPID_PUBLIC_KEY_PATH, routeAnswer, ringAnswer, vapidPublicKeyAnswer } from './routes';
export type { HttpAnswer, RingNode } from './routes';
export { registryConfigFromEnv } from './config';
export type { RegistryConfig } from './config';
export { RegistryMetrics } from './metrics';
export type { RegistryMetricsOptions } from './metrics';
