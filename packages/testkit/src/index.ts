export { waitFor } from './wait';
export { prng } from './prng';
export { startNodeProcess, REPO_ROOT, TEST_SECRET } from './node-process';
export type { NodeProcess, NodeProcessOptions, RpcTlsFiles } from './node-process';
export { RawClient, SDK_FEATURES, UpgradeRefused, testToken } from './raw-client';
export type { RawClientOptions, CloseInfo } from './raw-client';
export { LeanSocket, maskedTextFrame, readFrame } from './lean-socket';
export type { LeanHandlers, LeanSocketOptions } from './lean-socket';
export { startSingleNode, countRows } from './single-node';
export type { SingleNode, SingleNodeOptions } from './single-node';
export { createTestDatabase } from './db';
export type { TestDatabase } from './db';
export { createEngineTestDatabase, testEngineIsCitus } from './engine-db';
export { snapshotDatabase } from './db-snapshot';
export type { DatabaseSnapshot } from './db-snapshot';
export { startPostgres } from './postgres';
export { rssBytes } from './process-tree';
export type { PostgresHandle, PostgresOptions } from './postgres';
export { openSlowSocket } from './slow-socket';
export type { SlowSocket } from './slow-socket';
export { startServiceProcess } from './service-process';
export type { ServiceProcess, ServiceProcessOptions } from './service-process';
export { TestCluster, TEST_CLUSTER_SECRET } from './cluster';
export type { ClusterOptions, RegistryRing, RouteAnswer } from './cluster';
export { expectAgreement, expectOnOwners, recordExits } from './cluster-asserts';
export { startEtcd, startEtcdCluster } from './etcd';
export type {
  EtcdCluster,
  EtcdClusterOptions,
  EtcdHandle,
  EtcdOptions,
  EtcdTlsFiles,
} from './etcd';
export { startSecureEtcd, ETCD_CHAT_USER } from './secure-etcd';
export type { SecureEtcd } from './secure-etcd';
export * from './fault-proxy';
export * from './traffic';
export { LeanUser } from './lean-user';
export type { LeanUserOptions, OpenSeen } from './lean-user';
export { AT_CONNECT } from './sdk-watch';
export type { CloseSeen, MoveSeen, SdkWatch, WelcomeSeen } from './sdk-watch';
export { ringDiff, ringOf, registryOwners } from './ring-routes';
export { chatctl, chatctlStatus, expectNodePeaksWithin, startChatctl } from './chatctl';
export type { ChatctlOptions, ChatctlProcess, ChatctlResult } from './chatctl';
export { countBy, percentile } from './figures';
export { explainSlowest } from './delivery-samples';
export type { DeliverySample } from './delivery-samples';
export { drainReport, lagMonitor, overloaded } from './drain-report';
export { Population, pickMix } from './population';
export type { PopulationOptions } from './population';
export { startEtcdProxy } from './etcd-proxy';
export type { EtcdProxy } from './etcd-proxy';
export { startS3, S3_ACCESS_KEY, S3_SECRET_KEY } from './s3';
export type { S3Handle, S3Options } from './s3';
export { chromiumPath, launchBrowser, saveScreenshot } from './browser';
export type { BrowserOptions } from './browser';
export { startCitus, citusInstalled, createCitusTestDatabase, CITUS_PG_BINDIR } from './citus';
export type { CitusHandle, CitusOptions, CitusServer, CitusTopology } from './citus';
export { freePort } from './free-port';
export { holdKeyLocks } from './hold-locks';
export { createLocalCa, writePemPair } from './local-pki';
export type { LocalCa, PemPair, PemFiles } from './local-pki';
export { createLocalTls, LOOPBACK_NAMES } from './local-tls';
export { createLocalPush } from './local-push';
export type { LocalPush } from './local-push';
export type { LocalTls } from './local-tls';
export { issueRpcTls } from './rpc-tls';
export { nginxPath, startEdge } from './edge';
export type { EdgeHandle, EdgeOptions } from './edge';
export { trustingTransport } from './trusting-transport';
export type { TrustingTransport } from './trusting-transport';
export { LocalRun } from './local-run';
export {
  startApnsReceiver,
  startFcmReceiver,
  startWebPushReceiver,
  FaultScript,
} from './push-receivers';
export type {
  ApnsDelivery,
  ApnsReceiver,
  FcmDelivery,
  FcmReceiver,
  ReceiverSubscription,
  ScriptedFault,
  WebPushDelivery,
  WebPushReceiver,
} from './push-receivers';
