// Temporary scratch reproduction (deleted after use).
import { test } from 'node:test';
import { api, createTestTenant, startTestStack } from '../helpers/stack';
import { createSession, newUser } from '../helpers/files';

test('scratch', async () => {
  const stack = await startTestStack({ workers: true, env: { SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '2' } });
  try {
    const tenant = await createTestTenant(stack);
    const admin = await newUser(stack, tenant.id, 'a', { admin: true });
    const s = await createSession(stack, admin.token, { parent_id: admin.rootFolderId, name: 'x.bin', size: 100000, chunk_size: 65536 });
    for (let i = 0; i < 4; i++) {
      const r = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${s.body.id}/finalize`, { token: admin.token });
      console.log('finalize', i, r.status, r.headers.get('content-type'), r.text.slice(0, 300));
    }
    const st = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${s.body.id}`, { token: admin.token });
    console.log('status', st.status, st.text.slice(0, 300));
  } finally {
    await stack.close();
  }
});
