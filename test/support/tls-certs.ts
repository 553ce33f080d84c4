// Test certificates, made fresh by the openssl command line for each test file: a certificate
// authority and a certificate it signs, good for server and client use at 127.0.0.1 and localhost.
// Two calls make two unrelated authorities (a certificate of one is not trusted by the other).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  /** PEM texts. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** The same, as files (for `dram start --tls-*`), in `dir`. */
  readonly files: { readonly ca: string; readonly cert: string; readonly key: string };
  readonly dir: string;
  remove(): void;
}

export function makeCertificates(name: string): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), `dram-tls-${name}-`));
  const path = (file: string): string => join(dir, file);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name} CA`);
  openssl('req', ...ecKey, '-keyout', 'node.key', '-out', 'node.csr', '-subj', `/CN=${name} node`);
  writeFileSync(
    path('ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'node.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'node.crt',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
  const files = { ca: path('ca.crt'), cert: path('node.crt'), key: path('node.key') };
  return {
    ca: readFileSync(files.ca, 'utf8'),
    cert: readFileSync(files.cert, 'utf8'),
    key: readFileSync(files.key, 'utf8'),
    files,
    dir,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
