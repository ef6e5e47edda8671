export { BUILD_INFO_LABELS, buildInfo } from './build-info';
export type { BuildInfo } from './build-info';
export { createEtcdClient } from './client';
export type { EtcdClientOptions } from './client';
export {
  describeEtcdSecurity,
  etcdEndpointsFromEnv,
  etcdSecurityFromEnv,
  InvalidEtcdSettings,
} from './etcd-security';
export type { EtcdSecurity } from './etcd-security';
export {
  checkProductionCredential,
  checkProductionSecret,
  ConfigError,
  EnvReader,
  LOG_LEVELS,
} from './env';
export type { Env, LogLevel } from './env';
export { toClusterError } from './errors';
export { silentLogger } from './logger';
export type { ClusterLogger } from './logger';
export {
  clusterKeys,
  InvalidClusterData,
  liveMembers,
  nodeStatsUrl,
  previousLiveMembers,
  parseDrainProgress,
  peakPerSecond,
  parseNodeInfo,
  parseRingConfig,
} from './model';
export { CLIENT_URL_SCHEMES, INTERNAL_URL_SCHEMES, nodeUrlProblem } from './node-address';
export type {
  ClusterKeys,
  DrainProgress,
  NodeInfo,
  RingConfig,
  RingMember,
  RingTransition,
  VersionedRing,
} from './model';
export type { Disposer } from './signal';
export { register, NodeRegistration } from './registration';
export type { Registered, RegistrationOptions } from './registration';
export { watchCluster, ClusterView } from './view';
export type { ClusterChange, ClusterSnapshot, ClusterViewOptions } from './view';
export { RingConfigStore } from './ring-store';
export type { CasResult, RingConfigStoreOptions } from './ring-store';
export { startElection, Election } from './election';
export type { ElectionOptions } from './election';
export { RouteTable } from './route-table';
export { clientWsUrl, edgeNodePath, edgeOriginFrom, parseEdgeUrl } from './edge-url';
export {
  clientAddress,
  InvalidTrustedProxies,
  NO_TRUSTED_PROXIES,
  parseTrustedProxies,
  trustedProxiesFrom,
} from './client-address';
export type { TrustedProxies } from './client-address';
