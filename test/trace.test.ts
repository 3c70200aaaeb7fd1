// Call tracing: every typed call with decoded arguments, results and durations — and no
// PIN, key value or plaintext ever in the output.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKO, CKU, isTraced, loadRegistry, openModule } from '../ts/index.js';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const PIN = 'pin-9876-secret';
const KEY = Buffer.from('0123456789abcdeffedcba9876543210', 'hex');
const PLAINTEXT = Buffer.from('PLAINTEXT-SECRET');

describe('call tracing', () => {
  let hsm: SoftHsm;
  let slot: number;
  beforeAll(() => {
    hsm = createSoftHsm();
    slot = hsm.initToken('trace', '12345678', PIN);
  });
  afterAll(() => hsm.cleanup());

  it('logs calls with names, results and durations, and redacts PINs, key values and plaintext', async () => {
    const lines: string[] = [];
    const m = openModule(SOFTHSM_MODULE, { trace: (l) => lines.push(l) });
    try {
      const s = m.openSession(slot, { rw: true });
      expect(() => s.login(CKU.CKU_USER, 'wrong-pin-4321')).toThrow();
      s.login(CKU.CKU_USER, PIN);
      const key = s.createObject([
        { type: CKA.CKA_CLASS, value: CKO.CKO_SECRET_KEY },
        { type: CKA.CKA_KEY_TYPE, value: CKK.CKK_AES },
        { type: CKA.CKA_VALUE, value: KEY },
        { type: CKA.CKA_SENSITIVE, value: false },
        { type: CKA.CKA_EXTRACTABLE, value: true },
        { type: CKA.CKA_ENCRYPT, value: true },
        { type: CKA.CKA_DECRYPT, value: true },
      ]);
      const [value] = s.getAttributeValue(key, [CKA.CKA_VALUE]);
      expect(Buffer.from(value.value as Uint8Array).equals(KEY)).toBe(true); // the caller gets it; the trace must not
      s.encryptInit(CKM.CKM_AES_ECB, key);
      const cipher = s.encrypt(PLAINTEXT);
      s.decryptInit(CKM.CKM_AES_ECB, key);
      expect(Buffer.from(s.decrypt(cipher)).equals(PLAINTEXT)).toBe(true);
      const random = await s.async.generateRandom(24);
      s.digestInit(CKM.CKM_SHA256);
      s.digestUpdate(PLAINTEXT);
      s.digestFinal();
      const log = lines.join('\n');

      for (const secret of [PIN, 'wrong-pin-4321', KEY.toString('hex'), KEY.toString('hex').slice(0, 16), PLAINTEXT.toString(), PLAINTEXT.toString('hex').slice(0, 16), Buffer.from(random).toString('hex').slice(0, 16)]) {
        expect(log).not.toContain(secret);
      }
      expect(log).toMatch(/C_Login\(session=\d+, userType=CKU_USER, pin=<redacted>\) = CKR_PIN_INCORRECT \[[\d.]+ µs\]/);
      expect(log).toMatch(/C_Login\(session=\d+, userType=CKU_USER, pin=<redacted>\) = CKR_OK/);
      expect(log).toMatch(/C_CreateObject\(session=\d+, template=\[CKA_CLASS=CKO_SECRET_KEY, CKA_KEY_TYPE=CKK_AES, CKA_VALUE=<redacted>/);
      expect(log).toMatch(/C_GetAttributeValue\(session=\d+, object=\d+, types=\[CKA_VALUE\]\) = CKR_OK .* -> \[CKA_VALUE=<redacted>\]/);
      expect(log).toMatch(/C_EncryptInit\(session=\d+, mechanism=CKM_AES_ECB, key=\d+\) = CKR_OK/);
      expect(log).toMatch(/C_Encrypt\(session=\d+, data=<16 bytes, redacted>\) = CKR_OK .* -> <16 bytes [0-9a-f]{32}>/);
      expect(log).toMatch(/C_Decrypt\(session=\d+, data=<16 bytes, redacted>\) = CKR_OK .* -> <16 bytes, redacted>/);
      expect(log).toMatch(/C_GenerateRandom\(session=\d+, length=24\) async = CKR_OK .* -> <24 bytes, redacted>/);
      expect(log).toMatch(/C_DigestFinal\(session=\d+\) = CKR_OK .* -> <32 bytes [0-9a-f]{32}…>/);
      expect(log).toMatch(/C_OpenSession\(slot=\d+, flags=CKF_RW_SESSION\|CKF_SERIAL_SESSION\) = CKR_OK/);
    } finally {
      m.release();
    }
  });

  it("honours log-calls from the registry with p11-kit's precedence (global over module)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'p11kit-trace-'));
    try {
      mkdirSync(join(dir, 'modules'));
      copyFileSync(SOFTHSM_MODULE, join(dir, 'softhsm-copy.so'));
      writeFileSync(join(dir, 'pkcs11.conf'), 'log-calls: yes\n');
      writeFileSync(join(dir, 'modules/hsm.module'), `module: ${SOFTHSM_MODULE}\nlog-calls: no\n`);
      const where = { systemConfig: join(dir, 'pkcs11.conf'), systemModules: join(dir, 'modules'), packageModules: join(dir, 'none'), userConfig: join(dir, 'none'), userModules: join(dir, 'none') };
      const [entry] = loadRegistry(where).modules;
      expect(entry.settings.logCalls).toBe(true);
      const lines: string[] = [];
      const m = openModule(entry, { trace: (l) => lines.push(l) });
      m.getInfo();
      m.release();
      expect(isTraced(m.module)).toBe(true);
      expect(lines.some((l) => l.includes('C_GetInfo() = CKR_OK'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
