// The CLI for operators: `list`, `watch --metrics`, `--log-level`, exit codes - against real runc.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerWatcher } from '../../src/index.js';
import { serveMetrics, WatcherMetrics } from '../../src/cli/metrics.js';
import { Lab, Recorder, criAnnotations, lifecycle, ocinotify, privileged, sleep, until } from '../kit/index.js';

/** CRI-O's keys (BRIEF 2): a manager no other test on this node uses with runc, so its counts are ours. */
function crioAnnotations(tag: string): Record<string, string> {
  return {
    'io.container.manager': 'cri-o',
    'io.kubernetes.cri-o.ContainerType': 'container',
    'io.kubernetes.cri-o.ContainerName': `k8s_c-${tag}_pod-${tag}_ops_uid-${tag}_0`,
    'io.kubernetes.pod.name': `pod-${tag}`,
    'io.kubernetes.pod.namespace': 'ops',
    'io.kubernetes.pod.uid': `uid-${tag}`,
    'io.kubernetes.container.name': `c-${tag}`,
  };
}

/** The value of one sample line of a Prometheus text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.skipIf(!privileged())('operators CLI', () => {
  let lab: Lab;
  beforeAll(() => {
    lab = new Lab();
  });
  afterAll(async () => {
    await lab?.cleanup();
  });

  it('list shows running containers with pod metadata, as a table and as JSON', async () => {
    const id = 'ops-list';
    await lab.runc(['run', '--detach', '--bundle', lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)), id]);
    try {
      const json = ocinotify(['list', '--json', '--state-root', lab.stateRoot]);
      expect(await json.done, json.stderr()).toBe(0);
      const mine = (JSON.parse(json.stdout()) as { id: string; mntns: number }[]).find((c) => c.id === id);
      const state = JSON.parse(await lab.runc(['state', id])) as { pid: number };
      expect(mine).toMatchObject({
        id,
        runtime: 'runc',
        manager: 'containerd',
        pid: state.pid,
        started: true,
        pod: { name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` },
        container: { name: `c-${id}`, type: 'container' },
      });
      expect(mine!.mntns).toBeGreaterThan(0);
      const table = ocinotify(['list', '--state-root', lab.stateRoot]);
      expect(await table.done).toBe(0);
      const [header, ...rows] = table.lines();
      expect(header).toMatch(/^ID +MANAGER +NAMESPACE\/POD/);
      expect(rows.find((r) => r.startsWith(id))).toMatch(new RegExp(`containerd +demons/pod-${id} +c-${id} +container +${state.pid} .* running +uid-${id}`));
    } finally {
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('watch --metrics serves events, latency and gate decisions while a runc container is created', async () => {
    const p = ocinotify(['watch', '--json', '--metrics', '127.0.0.1:0', '--log-level', 'debug']);
    try {
      await until(() => /metrics at (http:\S+)/.test(p.stderr()) && p.lines().length > 0, () => `the metrics line (stderr: ${p.stderr()})`);
      const url = /metrics at (http:\S+)/.exec(p.stderr())![1]!;
      // Other containers on this node count too: what this container adds is the difference.
      const id = 'ops-metrics';
      const manager = 'cri-o';
      const before = await (await fetch(url)).text();
      const host = new Recorder({ snapshot: false }, new Set([id]));
      try {
        await lifecycle(lab, host, id, lab.bundle(id, ['/bin/sleep', '30'], crioAnnotations(id)));
      } finally {
        host.close();
      }
      await until(() => p.lines().some((l) => l.includes('"exit"') && l.includes(id)), 'the CLI reporting the exit');
      const res = await fetch(url);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      const added = (series: string) => (sample(text, series) ?? 0) - (sample(before, series) ?? 0);
      for (const type of ['precreate', 'create', 'start', 'exit'])
        expect(added(`ocinotify_events_total{type="${type}",manager="${manager}"}`), type).toBe(1);
      expect(added('ocinotify_precreate_latency_seconds_count')).toBeGreaterThanOrEqual(1);
      expect(added('ocinotify_precreate_latency_seconds_bucket{le="+Inf"}')).toBe(added('ocinotify_precreate_latency_seconds_count'));
      const seconds = added('ocinotify_precreate_latency_seconds_sum');
      expect(seconds).toBeGreaterThan(0);
      expect(seconds / added('ocinotify_precreate_latency_seconds_count')).toBeLessThan(1);
      expect(added('ocinotify_gate_decisions_total{decision="allow"}')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'ocinotify_lost_records_total')).toBe(0);
      expect((await fetch(url.replace('/metrics', '/'))).status).toBe(404);
      // --log-level debug logs each event on stderr
      expect(p.stderr()).toMatch(new RegExp(`debug: precreate "${id}" cri-o ops/pod-${id}`));
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.done).toBe(0);
  });

  it('metrics count denials and budget expiries of a gate', async () => {
    const watcher = new ContainerWatcher({
      snapshot: false,
      gateTimeoutMs: 500,
      onTimeout: 'fail-closed',
      gate: (e) => (e.id === 'ops-slow' ? new Promise(() => undefined) : e.id === 'ops-deny' ? 'deny' : 'allow'),
    });
    const server = await serveMetrics(new WatcherMetrics(watcher), '127.0.0.1', 0);
    try {
      const { port } = server.address() as { port: number };
      for (const id of ['ops-deny', 'ops-slow'])
        await expect(lab.runc(['create', '--bundle', lab.bundle(id, ['/bin/true'], criAnnotations(id)), id])).rejects.toThrow();
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      // Only these two are denied; other containers on the node pass this gate at once.
      expect(sample(text, 'ocinotify_gate_decisions_total{decision="deny"}')).toBe(2);
      expect(sample(text, 'ocinotify_gate_timeouts_total{answer="deny"}')).toBe(1);
      expect(sample(text, 'ocinotify_events_total{type="denied",manager="containerd"}')).toBe(2);
    } finally {
      server.close();
      watcher.close();
    }
  });

  it('--log-level error keeps stderr quiet; info says what is watched', async () => {
    for (const [level, expected] of [['error', /^$/], ['info', /^ocinotify: info: watching .* in full mode/]] as const) {
      const p = ocinotify(['watch', '--json', '--log-level', level]);
      await until(() => p.lines().length > 0, 'the ready line');
      await sleep(200); // watching, idle: what it logs meanwhile is what the level lets through
      p.child.kill('SIGINT');
      expect(await p.done).toBe(0);
      expect(p.stderr().split('\n')[0], level).toMatch(expected);
    }
  });

  it('exit codes: 2 for a non-loopback --metrics or a bad --log-level, 3 for an address in use', async () => {
    for (const args of [['--metrics', '0.0.0.0:9464'], ['--metrics', '10.1.2.3:80'], ['--log-level', 'loud']]) {
      const p = ocinotify(['watch', ...args]);
      expect(await p.done, args.join(' ')).toBe(2);
      expect(p.stderr()).toMatch(args[0] === '--metrics' ? /loopback only/ : /--log-level must be one of/);
    }
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const p = ocinotify(['watch', '--metrics', `127.0.0.1:${(busy.address() as { port: number }).port}`]);
      expect(await p.done).toBe(3);
      expect(p.stderr()).toMatch(/cannot listen on 127\.0\.0\.1:\d+: address in use/);
    } finally {
      busy.close();
    }
  });
});
