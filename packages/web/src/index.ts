export { buildWebAssets } from './assets';
export type { WebAsset, WebAssets } from './assets';
export { DASHBOARD_STREAM_PATH, dashboardStreamUrl } from './dashboard-feed';
export type {
  DashboardDrain,
  DashboardNode,
  DashboardRing,
  DashboardState,
  DashboardTransition,
  RingArc,
} from './dashboard-feed';
