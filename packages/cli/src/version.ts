/** What `chatctl --version` says: its own version and the wire protocol it was built with. */
import { FEATURES, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL } from '@chat/protocol';
import { version } from '../package.json';

export interface VersionInfo {
  /** The version of the @chat/cli package. */
  readonly chatctl: string;
  readonly protocol: {
    /** The WebSocket subprotocols of the wire protocol (`chat.v1.json`, ...). */
    readonly subprotocols: readonly string[];
    /** Optional protocol features clients may ask for. */
    readonly features: readonly string[];
  };
}

export function versionInfo(): VersionInfo {
  return {
    chatctl: version,
    protocol: { subprotocols: [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL], features: [...FEATURES] },
  };
}

/** `chatctl 0.1.0 (wire protocol chat.v1.json, chat.v1.msgpack; features no-echo, ...)` */
export function renderVersion(info: VersionInfo): string {
  return (
    `chatctl ${info.chatctl} (wire protocol ${info.protocol.subprotocols.join(', ')}; ` +
    `features ${info.protocol.features.join(', ')})`
  );
}
