/**
 * What `chat_build_info` says about a running process (node or registry), by Prometheus'
 * convention a gauge of 1 whose labels carry the build: the release, the Node.js runtime and
 * the wire protocol it speaks. Dashboards join on it to tell versions apart during a rollout.
 */
import { JSON_SUBPROTOCOL } from '@chat/protocol';
import { version as releaseVersion } from '../package.json';

export interface BuildInfo {
  /** The chat-cluster release, e.g. `0.1.0`. */
  readonly version: string;
  /** The Node.js version, e.g. `22.12.0`. */
  readonly node_version: string;
  /** The wire protocol version, e.g. `v1` (of the `chat.v1.json` subprotocol). */
  readonly protocol: string;
}

/** Label names of `chat_build_info`, in order. */
export const BUILD_INFO_LABELS = ['version', 'node_version', 'protocol'] as const;

/**
 * @example new Gauge({ name: 'chat_build_info', labelNames: BUILD_INFO_LABELS, ... }).set(buildInfo(), 1);
 */
export function buildInfo(versions: { readonly node: string } = process.versions): BuildInfo {
  return {
    version: releaseVersion,
    node_version: versions.node,
    protocol: /^chat\.(v\d+)\./.exec(JSON_SUBPROTOCOL)![1]!,
  };
}
