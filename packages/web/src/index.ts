export { buildWebAssets } from './assets';
export { PREBUILT_DIR, buildPrebuilt, loadPrebuilt, prebuiltProblem, webAssets } from './prebuilt';
export type { WebAssetsSource } from './prebuilt';
export type { WebAsset, WebAssets } from './assets';
