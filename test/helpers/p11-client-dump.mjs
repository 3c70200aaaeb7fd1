// Run as a child process: p11-kit's own client library (p11-kit-client.so, loaded through
// pkcs11js) against the server at P11_KIT_SERVER_ADDRESS. Prints one JSON document: every
// slot with its token, mechanisms and objects (public ones, then all after C_Login), and the
// result of signing and verifying with the key labelled argv[3]. argv[2] is the user PIN.
// A child, because p11-kit-client's calls block: a server in the test's own process would
// never get to answer them.
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';

const require = createRequire(import.meta.url);
const pkcs11js = require('pkcs11js');
const CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
const [pin, keyLabel] = process.argv.slice(2);
const CKA_CLASS = 0, CKA_LABEL = 3, CKA_ID = 0x102;

const p = new pkcs11js.PKCS11();
p.load(CLIENT);
p.C_Initialize({ flags: 2 });
const trim = (s) => s.replace(/ +$/, '');

function objects(session) {
  p.C_FindObjectsInit(session, []);
  const found = [];
  for (;;) {
    const batch = p.C_FindObjects(session, 16);
    if (!batch.length) break;
    found.push(...batch);
  }
  p.C_FindObjectsFinal(session);
  return found
    .map((h) => {
      try {
        const [cls, label, id] = p.C_GetAttributeValue(session, h, [{ type: CKA_CLASS }, { type: CKA_LABEL }, { type: CKA_ID }]);
        return { class: Number(cls.value.readBigUInt64LE(0)), label: label.value.toString('utf8'), id: id.value.toString('hex') };
      } catch (e) {
        // Found while another client of the same server held the token's login, gone when that
        // login ended (PKCS#11 login is per process): the object is no longer ours to see.
        if (String(e.message).startsWith('CKR_OBJECT_HANDLE_INVALID')) return undefined;
        throw e;
      }
    })
    .filter((o) => o !== undefined)
    .sort((a, b) => (a.label + a.class).localeCompare(b.label + b.class));
}

const out = { slots: [] };
for (const slot of p.C_GetSlotList(false)) {
  const si = p.C_GetSlotInfo(slot);
  const entry = { slot: { description: trim(si.slotDescription), manufacturer: trim(si.manufacturerID), flags: si.flags } };
  if (si.flags & 1) {
    const ti = p.C_GetTokenInfo(slot);
    entry.token = { label: trim(ti.label), manufacturer: trim(ti.manufacturerID), model: trim(ti.model), serial: trim(ti.serialNumber), flags: ti.flags };
    entry.mechanisms = p.C_GetMechanismList(slot).map((m) => ({ type: m, ...p.C_GetMechanismInfo(slot, m) }));
    if (ti.flags & 0x400 /* CKF_TOKEN_INITIALIZED */) {
      const session = p.C_OpenSession(slot, 4);
      entry.publicObjects = objects(session);
      if (pin) {
        try {
          p.C_Login(session, 1, pin);
        } catch (e) {
          // Another client of the same server process logged in (PKCS#11 login is per process).
          if (!String(e.message).startsWith('CKR_USER_ALREADY_LOGGED_IN')) throw e;
        }
        entry.objects = objects(session);
        let priv;
        let pub;
        if (keyLabel) {
          [priv] = (p.C_FindObjectsInit(session, [{ type: CKA_CLASS, value: 3 }, { type: CKA_LABEL, value: keyLabel }]), p.C_FindObjects(session, 1));
          p.C_FindObjectsFinal(session);
          [pub] = (p.C_FindObjectsInit(session, [{ type: CKA_CLASS, value: 2 }, { type: CKA_LABEL, value: keyLabel }]), p.C_FindObjects(session, 1));
          p.C_FindObjectsFinal(session);
        }
        if (keyLabel && priv && pub) {
          const digest = createHash('sha256').update('interop').digest();
          p.C_SignInit(session, { mechanism: 0x1041 /* CKM_ECDSA */ }, priv);
          const sig = p.C_Sign(session, digest, Buffer.alloc(256));
          p.C_VerifyInit(session, { mechanism: 0x1041 }, pub);
          entry.signature = { length: sig.length, verifies: p.C_Verify(session, digest, sig) };
          // PKCS#11's two-call convention: too small a buffer keeps the operation for a second call.
          p.C_SignInit(session, { mechanism: 0x1041 }, priv);
          try {
            p.C_Sign(session, digest, Buffer.alloc(8));
            entry.signature.smallBuffer = 'accepted';
          } catch (e) {
            entry.signature.smallBuffer = e.message.split(':')[0];
          }
          const second = p.C_Sign(session, digest, Buffer.alloc(256));
          p.C_VerifyInit(session, { mechanism: 0x1041 }, pub);
          entry.signature.secondCallVerifies = p.C_Verify(session, digest, second);
          p.C_VerifyInit(session, { mechanism: 0x1041 }, pub);
          const bad = Buffer.from(sig);
          bad[5] ^= 1;
          try {
            entry.signature.tamperedVerifies = p.C_Verify(session, digest, bad);
          } catch (e) {
            entry.signature.tamperedVerifies = e.message.split(':')[0];
          }
        }
        p.C_Logout(session);
      }
      p.C_CloseSession(session);
    }
  }
  out.slots.push(entry);
}
p.C_Finalize();
process.stdout.write(JSON.stringify(out));
