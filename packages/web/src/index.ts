export { buildWebAssets } from './assets';
export type { WebAsset, WebAssets } from './assets';
export type { DashboardDrain, DashboardNode, DashboardState, RingArc } from './dashboard-feed';
