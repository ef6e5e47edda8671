import type { NodeInfo } from '@chat/cluster';
import { NodeFiguresPoller, parseNodeStats, ratePerSec } from '../src/node-figures';

const node = (id: string, port: number): NodeInfo => ({
  nodeId: id,
  wsUrl: `ws://10.0.0.1:${port}/ws`,
  internalUrl: `http://10.0.0.1:${port}`,
  rpcAddress: `10.0.0.1:${port + 1000}`,
  weight: 1,
  startedAt: 1,
});

describe('parseNodeStats', () => {
  it('keeps the counts it uses', () => {
    expect(
      parseNodeStats({
        connections: 3,
        users: 2,
        messagesIn: 10,
        messagesOut: 30,
        rssBytes: 1,
      }),
    ).toEqual({ connections: 3, users: 2, messagesIn: 10, messagesOut: 30 });
  });

  it('keeps the connections moving out (issue 17) when there are any', () => {
    expect(parseNodeStats({ connections: 5, users: 4, movingOut: 2 })).toMatchObject({
      connections: 5,
      movingOut: 2,
    });
    expect(parseNodeStats({ connections: 5, users: 4, movingOut: 0 })).not.toHaveProperty(
      'movingOut',
    );
  });

  it('counts no messages for a node that does not report them', () => {
    expect(parseNodeStats({ connections: 0, users: 0 })).toEqual({
      connections: 0,
      users: 0,
      messagesIn: 0,
      messagesOut: 0,
    });
  });

  it('rejects what is not stats', () => {
    for (const body of [null, 'x', [], {}, { connections: -1, users: 0 }, { connections: 1 }])
      expect(parseNodeStats(body)).toBeUndefined();
  });
});

describe('ratePerSec', () => {
  it('is the delta over the elapsed time, one decimal', () => {
    expect(ratePerSec({ value: 100, at: 0 }, { value: 150, at: 2000 })).toBe(25);
    expect(ratePerSec({ value: 0, at: 0 }, { value: 1, at: 3000 })).toBe(0.3);
    expect(ratePerSec({ value: 7, at: 0 }, { value: 7, at: 1000 })).toBe(0);
  });

  it('is null without an earlier reading, without elapsed time, or after a restart', () => {
    expect(ratePerSec(undefined, { value: 5, at: 1000 })).toBeNull();
    expect(ratePerSec({ value: 1, at: 1000 }, { value: 5, at: 1000 })).toBeNull();
    expect(ratePerSec({ value: 500, at: 0 }, { value: 3, at: 1000 })).toBeNull();
  });
});

describe('NodeFiguresPoller', () => {
  /** Answers by URL from a table the test changes; a missing entry is a timeout. */
  function harness(nodes: NodeInfo[]) {
    let clock = 0;
    const answers = new Map<string, unknown>();
    const asked: string[] = [];
    let updates = 0;
    const poller = new NodeFiguresPoller({
      nodes: () => nodes,
      onUpdate: () => updates++,
      now: () => clock,
      fetchJson: async (url) => {
        asked.push(url);
        if (!answers.has(url)) throw new Error('timeout');
        return answers.get(url);
      },
      intervalMs: 5,
    });
    return {
      poller,
      answers,
      asked,
      updates: () => updates,
      advance: (ms: number) => (clock += ms),
    };
  }

  it('computes messages per second from two answers', async () => {
    const nodes = [node('node-1', 7001), node('node-2', 7002)];
    const h = harness(nodes);
    const url1 = 'http://10.0.0.1:7001/v1/stats';
    const url2 = 'http://10.0.0.1:7002/v1/stats';
    h.answers.set(url1, { connections: 4, users: 3, messagesIn: 100, messagesOut: 250 });
    h.answers.set(url2, { connections: 1, users: 1, messagesIn: 0, messagesOut: 0 });
    await h.poller.pollOnce();
    expect(h.poller.figures().get('node-1')).toEqual({
      connections: 4,
      users: 3,
      messagesPerSec: null,
      pushesPerSec: null,
      at: 0,
    });
    h.advance(2000);
    h.answers.set(url1, { connections: 5, users: 4, messagesIn: 160, messagesOut: 400 });
    await h.poller.pollOnce();
    expect(h.poller.figures().get('node-1')).toMatchObject({
      connections: 5,
      users: 4,
      messagesPerSec: 30,
      pushesPerSec: 75,
    });
    expect(h.poller.figures().get('node-2')).toMatchObject({ messagesPerSec: 0 });
    expect(h.poller.polledAt).toBe(2000);
    expect(h.updates()).toBe(2);
    expect(new Set(h.asked)).toEqual(new Set([url1, url2]));
  });

  it('forgets a node that did not answer or is gone, and starts its rate over', async () => {
    const nodes = [node('node-1', 7001), node('node-2', 7002)];
    const h = harness(nodes);
    const url1 = 'http://10.0.0.1:7001/v1/stats';
    h.answers.set(url1, { connections: 1, users: 1, messagesIn: 10, messagesOut: 10 });
    h.answers.set('http://10.0.0.1:7002/v1/stats', { connections: 2, users: 2 });
    await h.poller.pollOnce();
    expect([...h.poller.figures().keys()]).toEqual(['node-1', 'node-2']);
    h.answers.delete(url1);
    nodes.pop();
    h.advance(1000);
    await h.poller.pollOnce();
    expect([...h.poller.figures().keys()]).toEqual([]);
    h.answers.set(url1, { connections: 1, users: 1, messagesIn: 20, messagesOut: 20 });
    h.advance(1000);
    await h.poller.pollOnce();
    expect(h.poller.figures().get('node-1')?.messagesPerSec).toBeNull();
  });

  it('polls only between start and stop, and forgets its readings on stop', async () => {
    jest.useFakeTimers();
    try {
      const h = harness([node('node-1', 7001)]);
      h.answers.set('http://10.0.0.1:7001/v1/stats', { connections: 1, users: 1 });
      expect(h.poller.isRunning).toBe(false);
      h.poller.start();
      h.poller.start(); // idempotent: one loop
      await jest.advanceTimersByTimeAsync(0);
      expect(h.asked.length).toBe(1);
      await jest.advanceTimersByTimeAsync(5);
      await jest.advanceTimersByTimeAsync(5);
      expect(h.asked.length).toBe(3);
      expect(h.poller.figures().size).toBe(1);
      h.poller.stop();
      expect(h.poller.isRunning).toBe(false);
      expect(h.poller.figures().size).toBe(0);
      expect(h.poller.polledAt).toBeNull();
      expect(jest.getTimerCount()).toBe(0);
      await jest.advanceTimersByTimeAsync(100);
      expect(h.asked.length).toBe(3);
    } finally {
      jest.useRealTimers();
    }
  });

  it('drops the answers of a poll that was in flight when it stopped', async () => {
    let answer: (body: unknown) => void = () => undefined;
    const poller = new NodeFiguresPoller({
      nodes: () => [node('node-1', 7001)],
      onUpdate: () => undefined,
      fetchJson: () => new Promise((resolve) => (answer = resolve)),
    });
    const polled = poller.pollOnce();
    poller.stop();
    answer({ connections: 1, users: 1 });
    await polled;
    expect(poller.figures().size).toBe(0);
    expect(poller.polledAt).toBeNull();
  });
});
