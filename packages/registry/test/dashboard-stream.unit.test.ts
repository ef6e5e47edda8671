import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClusterChange, ClusterSnapshot, NodeInfo } from '@chat/cluster';
import { waitFor } from '@chat/testkit';
import type { DashboardRing, DashboardState } from '@chat/protocol/dashboard-feed';
import { parseTrustedProxies } from '@chat/cluster';
import { DashboardStream } from '../src/dashboard-stream';
import type { DashboardSource } from '../src/dashboard-stream';

/** An HTTP response that records what is written; `full` makes write() report backpressure. */
class FakeResponse extends EventEmitter {
  status = 0;
  headers: Record<string, string> = {};
  chunks: string[] = [];
  writableEnded = false;
  destroyed = false;
  full = false;
  writesAfterClose = 0;

  writeHead(status: number, headers: Record<string, string>): this {
    this.status = status;
    this.headers = headers;
    return this;
  }

  write(chunk: string): boolean {
    if (this.destroyed || this.writableEnded) this.writesAfterClose++;
    this.chunks.push(chunk);
    return !this.full;
  }

  end(chunk?: string): this {
    if (chunk !== undefined) this.chunks.push(chunk);
    this.writableEnded = true;
    return this;
  }

  /** What the server does to drop the connection. */
  destroy(): this {
    if (!this.destroyed) this.disconnect();
    return this;
  }

  /** The client went away. */
  disconnect(): void {
    this.destroyed = true;
    this.emit('close');
  }

  events(name: string): unknown[] {
    return this.chunks
      .filter((c) => c.startsWith(`event: ${name}\n`))
      .map((c) => JSON.parse(c.slice(c.indexOf('data: ') + 6)) as unknown);
  }

  states(): DashboardState[] {
    return this.events('state') as DashboardState[];
  }
}

class FakeSource implements DashboardSource {
  snapshot: ClusterSnapshot;
  private listeners = new Set<(change: ClusterChange) => void>();

  constructor(snapshot: ClusterSnapshot) {
    this.snapshot = snapshot;
  }

  onChange(listener: (change: ClusterChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listening(): number {
    return this.listeners.size;
  }

  set(snapshot: ClusterSnapshot): void {
    const previous = this.snapshot;
    this.snapshot = snapshot;
    for (const l of this.listeners) l({ snapshot, previous, reason: 'watch' });
  }
}

const info = (id: string, port: number): NodeInfo => ({
  nodeId: id,
  wsUrl: `ws://127.0.0.1:${port}/ws`,
  internalUrl: `http://127.0.0.1:${port}`,
  rpcAddress: `127.0.0.1:${port + 1}`,
  weight: 1,
  startedAt: 1,
});

function snapshot(ids: string[], revision: number, memberIds = ids): ClusterSnapshot {
  return {
    nodes: new Map(ids.map((id, i) => [id, info(id, 7000 + i * 10)])),
    ring: {
      config: { epoch: revision, members: memberIds.map((id) => ({ id, weight: 1 })) },
      modRevision: revision,
    },
    drains: new Map(),
    revision,
  };
}

function open(stream: DashboardStream, address = '127.0.0.1', forwardedFor?: string): FakeResponse {
  const res = new FakeResponse();
  const headers = forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor };
  const req = Object.assign(new EventEmitter(), { socket: { remoteAddress: address }, headers });
  stream.attach(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  return res;
}

describe('DashboardStream', () => {
  let stream: DashboardStream | undefined;
  afterEach(() => stream?.close());

  function start(source: FakeSource, asked: string[] = [], minIntervalMs = 20): DashboardStream {
    stream = new DashboardStream({
      source,
      minIntervalMs,
      pollIntervalMs: 10,
      fetchJson: async (url) => {
        asked.push(url);
        return { connections: 1, users: 1, messagesIn: asked.length, messagesOut: 0 };
      },
    });
    return stream;
  }

  it('sends the ring and the state at once, then the state on every change', async () => {
    const source = new FakeSource(snapshot(['node-1', 'node-2', 'node-3'], 1));
    const s = start(source);
    const res = open(s);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.chunks[0]).toBe('retry: 1000\n\n');
    const rings = res.events('ring') as DashboardRing[];
    expect(rings).toHaveLength(1);
    expect(new Set(rings[0]!.arcs.map((a) => a.node))).toEqual(
      new Set(['node-1', 'node-2', 'node-3']),
    );
    expect(res.states()).toHaveLength(1);
    expect(res.states()[0]!.nodes.map((n) => n.nodeId)).toEqual(['node-1', 'node-2', 'node-3']);

    source.set(
      snapshot(['node-1', 'node-2', 'node-3', 'node-4'], 2, ['node-1', 'node-2', 'node-3']),
    );
    await waitFor(() =>
      expect(res.states().some((st) => st.nodes.some((n) => n.nodeId === 'node-4'))).toBe(true),
    );
    // node-4 registered but is no member: the ring did not change.
    expect(res.events('ring')).toHaveLength(1);
    source.set(snapshot(['node-1', 'node-2', 'node-3', 'node-4'], 3, ['node-1', 'node-4']));
    await waitFor(() => expect(res.events('ring')).toHaveLength(2));
    const ring = res.events('ring')[1] as DashboardRing;
    expect(new Set(ring.arcs.map((a) => a.node))).toEqual(new Set(['node-1', 'node-4']));
    // The ring comes right before the state that goes with it (node figures polled meanwhile
    // may add states after that one).
    await waitFor(() => {
      const names = res.chunks
        .filter((c) => c.startsWith('event: '))
        .map((c) => c.slice(7, c.indexOf('\n')));
      const ringAt = names.lastIndexOf('ring');
      expect(names.slice(ringAt, ringAt + 2)).toEqual(['ring', 'state']);
    });
  });

  it('polls the nodes only while a dashboard is open, and streams their figures', async () => {
    const source = new FakeSource(snapshot(['node-1', 'node-2'], 1));
    const asked: string[] = [];
    const s = start(source, asked);
    expect(s.polling).toBe(false);
    const a = open(s);
    const b = open(s);
    expect(s.polling).toBe(true);
    await waitFor(() =>
      expect(
        b
          .states()
          .at(-1)
          ?.nodes.map((n) => n.messagesPerSec !== null),
      ).toEqual([true, true]),
    );
    expect(new Set(asked)).toEqual(
      new Set(['http://127.0.0.1:7000/v1/stats', 'http://127.0.0.1:7010/v1/stats']),
    );
    a.disconnect();
    expect(s.polling).toBe(true);
    expect(s.size).toBe(1);
    b.disconnect();
    expect(s.polling).toBe(false);
    expect(s.size).toBe(0);
    source.set(snapshot(['node-1'], 2));
    expect(a.writesAfterClose + b.writesAfterClose).toBe(0);
  });

  it('coalesces a burst of changes', async () => {
    const source = new FakeSource(snapshot(['node-1'], 1));
    const s = start(source, [], 1000);
    const res = open(s);
    for (let i = 2; i < 50; i++) source.set(snapshot(['node-1'], i));
    // The first change is sent at once (nothing was sent by the flusher yet), the rest wait.
    await waitFor(() => expect(res.states().at(-1)?.revision).toBe(49));
    expect(res.states().length).toBeLessThanOrEqual(3);
  });

  it('holds states back from a congested client and sends the latest when it drains', async () => {
    const source = new FakeSource(snapshot(['node-1'], 1));
    const s = start(source);
    const res = open(s);
    const witness = open(s);
    res.full = true;
    source.set(snapshot(['node-1'], 2));
    await waitFor(() => expect(res.states().at(-1)?.revision).toBe(2));
    const count = res.chunks.length;
    source.set(snapshot(['node-1'], 3));
    source.set(snapshot(['node-1'], 4));
    await waitFor(() => expect(witness.states().at(-1)?.revision).toBe(4));
    expect(res.chunks.length).toBe(count);
    res.full = false;
    res.emit('drain');
    expect(res.states().at(-1)?.revision).toBe(4);
  });

  it('drops every stream on close, refuses new ones and stops listening', () => {
    const source = new FakeSource(snapshot(['node-1'], 1));
    const s = start(source);
    const res = open(s);
    const stuck = open(s);
    stuck.full = true;
    source.set(snapshot(['node-1'], 2));
    expect(source.listening).toBe(1);
    s.close();
    // Destroyed, not ended: ending would wait for the stuck client to read, and so would the
    // registry's server.close().
    expect([res.destroyed, stuck.destroyed]).toEqual([true, true]);
    expect(s.size).toBe(0);
    expect(s.polling).toBe(false);
    expect(source.listening).toBe(0);
    const late = open(s);
    expect(late.status).toBe(503);
  });

  describe('a congested client', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    function startCongestible(source: FakeSource, maxClients = 64): DashboardStream {
      stream = new DashboardStream({
        source,
        maxClients,
        minIntervalMs: 10,
        congestedTimeoutMs: 10_000,
        now: () => Date.now(),
        fetchJson: async () => ({}),
      });
      return stream;
    }

    it('is disconnected when it stays congested, freeing its slot', () => {
      const source = new FakeSource(snapshot(['node-1'], 1));
      const s = startCongestible(source, 2);
      const stuck = open(s);
      const reader = open(s);
      stuck.full = true;
      source.set(snapshot(['node-1'], 2));
      jest.advanceTimersByTime(10);
      expect(stuck.states().at(-1)?.revision).toBe(2);
      expect(open(s).status).toBe(503);
      jest.advanceTimersByTime(9_900);
      expect(stuck.destroyed).toBe(false);
      jest.advanceTimersByTime(100);
      expect(stuck.destroyed).toBe(true);
      expect(s.size).toBe(1);
      expect(reader.destroyed).toBe(false);
      expect(open(s).status).toBe(200);
      source.set(snapshot(['node-1'], 3));
      jest.advanceTimersByTime(10);
      expect(reader.states().at(-1)?.revision).toBe(3);
      expect(stuck.writesAfterClose).toBe(0);
    });

    it('is kept when it drains in time, and timed again when it fills up again', () => {
      const source = new FakeSource(snapshot(['node-1'], 1));
      const s = startCongestible(source);
      const slow = open(s);
      slow.full = true;
      source.set(snapshot(['node-1'], 2));
      jest.advanceTimersByTime(9_000);
      slow.full = false;
      slow.emit('drain');
      jest.advanceTimersByTime(20_000);
      expect(slow.destroyed).toBe(false);
      expect(slow.states().at(-1)?.revision).toBe(2);
      slow.full = true;
      source.set(snapshot(['node-1'], 3));
      jest.advanceTimersByTime(9_990);
      expect(slow.destroyed).toBe(false);
      jest.advanceTimersByTime(20);
      expect(slow.destroyed).toBe(true);
      expect(s.size).toBe(0);
    });
  });

  it('refuses dashboards beyond the limit', () => {
    const source = new FakeSource(snapshot(['node-1'], 1));
    stream = new DashboardStream({ source, maxClients: 2, fetchJson: async () => ({}) });
    expect([open(stream), open(stream), open(stream)].map((r) => r.status)).toEqual([
      200, 200, 503,
    ]);
  });

  it('refuses streams beyond the limit of one address, and counts a closed one out', () => {
    const source = new FakeSource(snapshot(['node-1'], 1));
    stream = new DashboardStream({ source, maxClientsPerAddress: 2, fetchJson: async () => ({}) });
    const [a, b, c] = [
      open(stream, '10.0.0.1'),
      open(stream, '10.0.0.1'),
      open(stream, '10.0.0.1'),
    ];
    expect([a, b, c].map((r) => r?.status)).toEqual([200, 200, 429]);
    expect(open(stream, '10.0.0.2').status).toBe(200);
    a?.destroy();
    expect(open(stream, '10.0.0.1').status).toBe(200);
    expect(stream.size).toBe(3);
  });

  it('behind a trusted edge, counts each stream against the client the edge names', () => {
    const source = new FakeSource(snapshot(['node-1'], 1));
    const trustedProxies = parseTrustedProxies('CHAT_TRUSTED_PROXIES', ['127.0.0.1']);
    stream = new DashboardStream({
      source,
      maxClientsPerAddress: 1,
      trustedProxies,
      fetchJson: async () => ({}),
    });
    const viaEdge = ['198.51.100.1', '198.51.100.2', '198.51.100.1'].map(
      (client) => open(stream!, '127.0.0.1', client).status,
    );
    expect(viaEdge).toEqual([200, 200, 429]);
    // Anyone else's header is not believed: both count against 10.0.0.9.
    const direct = ['198.51.100.3', '198.51.100.4'].map(
      (client) => open(stream!, '10.0.0.9', client).status,
    );
    expect(direct).toEqual([200, 429]);
  });
});
