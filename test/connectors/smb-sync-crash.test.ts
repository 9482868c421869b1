// A connector sync survives its worker being killed (SIGKILL) mid-job: a new worker process resumes the job
// and every source file ends with exactly one version (no duplicate from the interrupted import), quota equal
// to the bytes imported. The run continues-as-new every N items; the worker's log lines never carry the secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { startSamba, type SambaServer } from '../helpers/samba';
import { startConnectorWorker, type WorkerProcess } from '../helpers/worker-process';
import { getConnector, startSync } from '../../src/services/connectors.service';

const V1 = '/api/v1';

describe('connector sync survives a worker crash', () => {
  let stack: TestStack;
  let samba: SambaServer;
  let admin: TestUser;
  let tenantId: string;
  const workers: WorkerProcess[] = [];
  const logs: Buffer[] = [];
  const startWorkerProcess = async () => {
    const worker = await startConnectorWorker(stack, logs);
    workers.push(worker);
    return worker;
  };

  before(async () => {
    samba = await startSamba();
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
  });
  after(async () => {
    for (const worker of workers) await worker.kill('SIGKILL');
    await stack?.close();
    await samba?.dispose();
  });

  test('kill -9 mid-import, restart: the job resumes, one version per file, quota exact', async () => {
    const sizes = new Map<string, number>();
    for (let d = 0; d < 6; d++) {
      for (let f = 0; f < 60; f++) {
        const relative = `dir ${d}/file ${f}.bin`;
        const data = randomBytes(2000 + f * 50);
        await mkdir(path.join(samba.shareDir, `dir ${d}`), { recursive: true });
        await writeFile(path.join(samba.shareDir, relative), data);
        sizes.set(relative, data.length);
      }
    }
    const created = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors`, {
      token: admin.token,
      body: { host: samba.host, port: samba.port, share: samba.share, username: samba.username, password: samba.password, target_folder_id: admin.rootFolderId },
    });
    assert.equal(created.status, 201, created.text);
    const connector = await getConnector(stack.services.db, tenantId, 'smb', created.body.id);

    let worker = await startWorkerProcess();
    // Continue-as-new every 50 items, so the crash also lands in a continued run.
    const job = await startSync(stack.services, connector, { trigger: 'manual', createdBy: admin.userId, itemsPerRun: 50 });
    const { db } = stack.services;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const imported = await db.selectFrom('connector_import_state').select((eb) => eb.fn.countAll().as('n')).where('connector_id', '=', connector.id).where('version_id', 'is not', null).executeTakeFirstOrThrow();
      if (Number(imported.n) >= 120) break;
      if (Date.now() > deadline) assert.fail('the import never got going');
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.kill('SIGKILL');
    const midway = await db.selectFrom('connector_jobs').selectAll().where('id', '=', job.id).executeTakeFirstOrThrow();
    assert.equal(midway.status, 'running', 'killed mid-job');
    assert.ok(midway.files_added < sizes.size, 'not done when killed');

    worker = await startWorkerProcess();
    const handle = stack.services.temporal.workflow.getHandle(job.workflow_id);
    await handle.result();
    const done = await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${connector.id}/jobs/${job.id}`, { token: admin.token });
    assert.equal(done.body.status, 'succeeded', done.text);
    assert.notEqual((await handle.describe()).runId, job.run_id, 'the job continued as new');

    const state = await db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', connector.id).where('kind', '=', 'file').execute();
    assert.equal(state.length, sizes.size);
    assert.ok(state.every((s) => s.version_id && !s.pending_upload_id));
    const fileIds = state.map((s) => s.file_id!);
    const versions = await db.selectFrom('versions').select(['file_id', 'size']).where('file_id', 'in', fileIds).execute();
    assert.equal(versions.length, sizes.size, 'exactly one version per file');
    const usage = await db.selectFrom('quotas').select('used_bytes').where('level', '=', 'user').where('subject_id', '=', admin.userId).executeTakeFirstOrThrow();
    assert.equal(usage.used_bytes, [...sizes.values()].reduce((a, b) => a + b, 0), 'quota charged once per file');
    const leftover = await db.selectFrom('upload_sessions').select('id').where('user_id', '=', admin.userId).where('status', '!=', 'completed').execute();
    assert.equal(leftover.length, 0, 'the interrupted session was discarded');

    await worker.kill('SIGTERM');
    const text = worker.output();
    assert.ok(text.includes(connector.id) || text.includes('activity completed'), 'the worker logged');
    assert.ok(!text.includes(samba.password), 'the secret never appears in a log line');
  });
});
