// deploy/: the systemd unit passes `systemd-analyze verify` (no warning either) and says what a daemon's
// unit must; the Kubernetes manifests validate against the Kubernetes schemas (kubernetes-models) and
// the Prometheus Operator's, and keep the promises the README makes (drain before kill, probes, RWX).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CronJob } from 'kubernetes-models/batch/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, PersistentVolumeClaim } from 'kubernetes-models/v1';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { configSchema } from '../../src/config/schema.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DRAIN_S = configSchema.parse({}).drainTimeoutMs / 1000;

function unitSettings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (kv !== null) m.set(kv[1]!, [...(m.get(kv[1]!) ?? []), kv[2]!]);
  }
  return m;
}

describe('deploy/sluice.service', () => {
  const text = readFileSync(join(ROOT, 'deploy/sluice.service'), 'utf8');

  it('passes systemd-analyze verify without a warning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-unit-'));
    try {
      // verify checks that the command exists: point it at this build
      const unit = join(dir, 'sluice.service');
      writeFileSync(unit, text.replace('/usr/local/bin/sluice', join(ROOT, 'dist/cli.js')));
      const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      expect(r.error).toBeUndefined();
      expect(r.stderr + r.stdout).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs as its own user, hardened, reloads with SIGHUP, and waits longer than the drain', () => {
    const s = unitSettings(text);
    expect(s.get('User')).toEqual(['sluice']);
    expect(s.get('NoNewPrivileges')).toEqual(['yes']);
    expect(s.get('ProtectSystem')).toEqual(['strict']);
    expect(s.get('ReadWritePaths')).toEqual(['/var/lib/sluice']);
    expect(s.get('Restart')).toEqual(['on-failure']);
    expect(s.get('RestartPreventExitStatus')).toEqual(['2']);
    expect(s.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(s.get('KillSignal')).toEqual(['SIGTERM']);
    expect(Number.parseInt(s.get('TimeoutStopSec')![0]!, 10)).toBeGreaterThan(DRAIN_S);
  });
});

describe('deploy/kubernetes/sluice.yaml', () => {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/sluice.yaml'), 'utf8')).map(
    (d) => d.toJS() as { apiVersion: string; kind: string },
  );
  // biome-ignore lint/suspicious/noExplicitAny: a manifest is walked by path in assertions
  const byKind = (kind: string): Record<string, any> => docs.find((d) => d.kind === kind) as Record<string, any>;

  it('validates against the Kubernetes and Prometheus Operator schemas', () => {
    // biome-ignore lint/suspicious/noExplicitAny: each model class takes its own manifest type
    const classes: Record<string, new (o: any) => { validate(): void }> = {
      'v1/ConfigMap': ConfigMap,
      'v1/PersistentVolumeClaim': PersistentVolumeClaim,
      'apps/v1/Deployment': Deployment,
      'batch/v1/CronJob': CronJob,
      'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
    };
    expect(docs.map((d) => `${d.apiVersion}/${d.kind}`).sort()).toEqual(Object.keys(classes).sort());
    for (const d of docs) expect(() => new classes[`${d.apiVersion}/${d.kind}`]!(d).validate(), `${d.kind}`).not.toThrow();
    // the validation can fail: a port that is not a number is refused
    const broken = structuredClone(byKind('Deployment'));
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'metrics';
    expect(() => new Deployment(broken).validate()).toThrow();
  });

  it('runs several replicas on one ReadWriteMany volume, probes /healthz and /readyz, and drains before it is killed', () => {
    const deploy = byKind('Deployment');
    expect(deploy.spec.replicas).toBeGreaterThan(1);
    expect(byKind('PersistentVolumeClaim').spec.accessModes).toEqual(['ReadWriteMany']);
    const pod = deploy.spec.template.spec;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(DRAIN_S);
    expect(pod.containers[0].livenessProbe.httpGet.path).toBe('/healthz');
    expect(pod.containers[0].readinessProbe.httpGet.path).toBe('/readyz');
    const job = byKind('CronJob').spec.jobTemplate.spec.template.spec;
    expect(job.containers[0].args).toContain('--once');
    expect(job.terminationGracePeriodSeconds).toBeGreaterThan(DRAIN_S);
    const cfg = configSchema.parse(parseAllDocuments(byKind('ConfigMap').data['sluice.yaml'])[0]!.toJS());
    expect(cfg.metrics.port).toBe(pod.containers[0].ports[0].containerPort);
    expect(byKind('PodMonitor').spec.podMetricsEndpoints[0].port).toBe('metrics');
  });
});
