// Streaming through the service keeps memory bounded: 1 GiB, generated as it is read, is
// digested (SHA-256) and signed (SHA256-RSA-PKCS, multi-part) by SoftHSM2 in a service worker,
// and the process's peak RSS grows by less than 64 MB. Measured in a child process of its own
// (bench/service-stream.mjs, which also reports throughput when run by hand) so that nothing
// of the test runner counts. No timing is asserted.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const MIB = 1024;

describe('service streams: memory', () => {
  it(`${MIB} MiB digested and signed through the service with peak RSS growth < 64 MB`, async () => {
    const script = new URL('../bench/service-stream.mjs', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, [script, '--mib', String(MIB), '--json', '--no-reference'], {
      timeout: 170_000,
      maxBuffer: 1 << 20,
    });
    const r = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(r).toMatchObject({ mib: MIB, digestMatches: true, signatureBytes: 256, verifiedPrefix: false });
    expect(r.peakGrowthMB).toBeGreaterThan(0);
    expect(r.peakGrowthMB).toBeLessThan(64);
  }, 180_000);
});
