/**
 * Shared setup of the node tests that push for real (push-delivery, push-hang, push-failover):
 * the strict local push service of @chat/testkit behind a local CA, a VAPID key pair, and a
 * single node that sends to that service.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChatClient } from '@chat/client';
import type { ChatClientOptions } from '@chat/client';
import type { SingleNode, WebPushReceiver } from '@chat/testkit';
import {
  createLocalCa,
  createLocalPush,
  startSingleNode,
  startWebPushReceiver,
  testToken,
} from '@chat/testkit';

export interface LocalWebPush {
  readonly receiver: WebPushReceiver;
  readonly vapidPublicKey: string;
  /**
   * What a node needs to send to `receiver`: the VAPID keys, the CA file, and private endpoints
   * allowed (the receiver listens on localhost).
   */
  readonly nodeEnv: Readonly<Record<string, string>>;
  /** Stops the receiver and removes the CA file; call after the nodes are stopped. */
  close(): Promise<void>;
}

/**
 * `name` names the CA and its temporary directory (the test's name). The VAPID keys are made as
 * `npm start` makes them (testkit's createLocalPush: the private key by file).
 */
export async function startLocalWebPush(name: string): Promise<LocalWebPush> {
  const dir = await mkdtemp(path.join(tmpdir(), `${name}-`));
  const ca = await createLocalCa(`${name} CA`);
  const receiver = await startWebPushReceiver({ tls: await ca.issue('localhost', ['localhost']) });
  const caFile = path.join(dir, 'ca.pem');
  await writeFile(caFile, ca.cert);
  const push = await createLocalPush();
  return {
    receiver,
    vapidPublicKey: push.vapidPublicKey,
    nodeEnv: {
      ...push.nodeEnv,
      CHAT_PUSH_CA_FILE: caFile,
      CHAT_PUSH_ALLOW_PRIVATE_ENDPOINTS: '1',
    },
    close: async () => {
      await receiver.close();
      await push.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface WebPushNode {
  readonly h: SingleNode;
  readonly webPush: LocalWebPush;
  /** An SDK client of `user`'s `device` connected to the node; closed by close(). */
  connect(
    user: string,
    device: string,
    options?: Omit<ChatClientOptions, 'url' | 'registryUrl' | 'user' | 'token'>,
  ): Promise<ChatClient>;
  /** Closes the clients, the node and the push service. */
  close(): Promise<void>;
}

/** A single node with `env` (CHAT_PUSH_* tuning) sending to a fresh local push service. */
export async function startWebPushNode(
  name: string,
  env: Readonly<Record<string, string>>,
): Promise<WebPushNode> {
  const webPush = await startLocalWebPush(name);
  const h = await startSingleNode({ env: { ...webPush.nodeEnv, ...env } });
  const open: ChatClient[] = [];
  return {
    h,
    webPush,
    connect: async (user, device, options = {}) => {
      const client = new ChatClient({
        ...options,
        url: h.node.url,
        user,
        token: () => testToken(user, device),
      });
      open.push(client);
      await client.connect();
      return client;
    },
    close: async () => {
      await Promise.all(open.map((c) => c.close()));
      await h.close();
      await webPush.close();
    },
  };
}
