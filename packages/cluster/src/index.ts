export { createEtcdClient } from './client';
export type { EtcdClientOptions } from './client';
export {
  describeEtcdSecurity,
  etcdEndpointsFromEnv,
  etcdSecurityFromEnv,
  InvalidEtcdSettings,
} from './etcd-security';
export type { EtcdSecurity } from './etcd-security';
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
export { clientWsUrl, edgeNodePath, parseEdgeUrl } from './edge-url';
export {
  clientAddress,
  InvalidTrustedProxies,
  NO_TRUSTED_PROXIES,
  parseTrustedProxies,
} from './client-address';
export type { TrustedProxies } from './client-address';
