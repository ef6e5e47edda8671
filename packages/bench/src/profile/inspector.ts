/** A minimal Chrome DevTools Protocol client for a node started with --inspect=127.0.0.1:PORT. */
import WebSocket from 'ws';

export class Inspector {
  private next = 1;
  private readonly waiting = new Map<number, (r: Record<string, unknown>) => void>();
  chunks: string[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8')) as {
        id?: number;
        method?: string;
        params?: { chunk?: string };
        result?: Record<string, unknown>;
      };
      if (m.method === 'HeapProfiler.addHeapSnapshotChunk') this.chunks.push(m.params!.chunk!);
      if (m.id !== undefined) this.waiting.get(m.id)?.(m.result ?? {});
    });
  }
  static async open(port: number): Promise<Inspector> {
    const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    const ws = new WebSocket(list[0]!.webSocketDebuggerUrl, { maxPayload: 1 << 30 });
    await new Promise((r) => ws.once('open', r));
    return new Inspector(ws);
  }
  call(method: string, params: object = {}): Promise<Record<string, unknown>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 120_000);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
  async memory(): Promise<Record<string, number>> {
    await this.call('HeapProfiler.collectGarbage');
    const r = await this.call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    });
    return JSON.parse((r.result as { value: string }).value) as Record<string, number>;
  }
  async snapshot(): Promise<Map<string, { count: number; bytes: number }>> {
    this.chunks = [];
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    const snap = JSON.parse(this.chunks.join('')) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
      nodes: number[];
      strings: string[];
    };
    const f = snap.snapshot.meta.node_fields;
    const width = f.length;
    const [iType, iName, iSize] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
    const types = snap.snapshot.meta.node_types[0];
    const out = new Map<string, { count: number; bytes: number }>();
    for (let i = 0; i < snap.nodes.length; i += width) {
      const type = types[snap.nodes[i + iType]!]!;
      const name =
        type === 'object' || type === 'closure'
          ? snap.strings[snap.nodes[i + iName]!]!
          : `(${type})`;
      const key = type === 'closure' ? `closure ${name}` : name;
      const e = out.get(key) ?? { count: 0, bytes: 0 };
      e.count++;
      e.bytes += snap.nodes[i + iSize]!;
      out.set(key, e);
    }
    return out;
  }
}
