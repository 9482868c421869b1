// A throw-away certificate authority and a server certificate for `localhost` / 127.0.0.1, made with the
// openssl CLI, for fakes that must speak HTTPS (the Microsoft Graph fake: the Graph client only sends tokens
// to https:// hosts). The harness makes them once per run and trusts the CA in every test process through
// NODE_EXTRA_CA_CERTS (read by Node at start-up), so the product code runs with no test-only switch.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export function certificatesIn(dir: string): TestCertificates {
  return { caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server.key') };
}

export async function createTestCertificates(dir: string): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true });
  const files = certificatesIn(dir);
  const caKey = path.join(dir, 'ca.key');
  const csr = path.join(dir, 'server.csr');
  const extensions = path.join(dir, 'server.ext');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', files.caFile, '-days', '7', '-subj', '/CN=ScaiDrive test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', files.keyFile, '-out', csr, '-subj', '/CN=localhost']);
  await writeFile(extensions, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', files.caFile, '-CAkey', caKey, '-CAcreateserial', '-out', files.certFile, '-days', '7', '-extfile', extensions]);
  return files;
}
