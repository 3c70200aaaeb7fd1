// The Chromium test's page: the library's browser entry, reaching a real PKCS#11 service host
// through the test relay's WebSocket (an endpoint of a few lines, as an app's preload would give
// a MessagePort). The test drives it step by step through window.p11test.
import {
  CKA,
  CKM,
  CKO,
  connectPkcs11,
  Pkcs11Error,
  ServiceDeadError,
  ServiceRefusedError,
  UnknownModuleError,
  type Pkcs11Client,
  type ServiceSession,
  type ServiceEndpoint,
} from 'p11kit-wasm/service/browser';
import { decodeWire, encodeWire } from './wire.js';

function wsEndpoint(ws: WebSocket): ServiceEndpoint {
  const listeners = new Map<unknown, (e: MessageEvent) => void>();
  const closeListeners: ((reason: string) => void)[] = [];
  let closed: string | undefined;
  ws.addEventListener('close', (e) => {
    closed ??= `relay closed (${e.code})`;
    for (const l of closeListeners.splice(0)) l(closed);
  });
  return {
    postMessage: (m: unknown) => ws.send(encodeWire(m)),
    addEventListener(_t: string, l: EventListenerOrEventListenerObject) {
      const h = (e: MessageEvent) => {
        const ev = { data: decodeWire(String(e.data)) } as MessageEvent;
        if (typeof l === 'function') l(ev);
        else l.handleEvent(ev);
      };
      listeners.set(l, h);
      ws.addEventListener('message', h);
    },
    removeEventListener(_t: string, l: EventListenerOrEventListenerObject) {
      const h = listeners.get(l);
      if (h) ws.removeEventListener('message', h);
      listeners.delete(l);
    },
    onClose: (l) => (closed !== undefined ? queueMicrotask(() => l(closed!)) : closeListeners.push(l)),
    close: () => ws.close(),
  };
}

const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
let client: Pkcs11Client;
let pending: Promise<unknown> | undefined;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const describe = (e: unknown) => ({
  name: (e as Error).name,
  message: (e as Error).message,
  isPkcs11Error: e instanceof Pkcs11Error,
  isRefused: e instanceof ServiceRefusedError,
  isUnknownModule: e instanceof UnknownModuleError,
  isDead: e instanceof ServiceDeadError,
  code: (e as { code?: string }).code,
  needs: (e as { needs?: string }).needs,
  pending: (e as { pending?: boolean }).pending,
  available: (e as { available?: string[] }).available,
  callerStack: String((e as Error).stack).includes('--- called from ---'),
});
const failure = (p: Promise<unknown>) => p.then(() => ({ name: 'no error' }), describe);

async function session(slot: number, pin?: string): Promise<ServiceSession> {
  const m = await client.openModule(SOFTHSM);
  return m.openSession(slot, pin === undefined ? {} : { pin });
}

// Probed as the page loads, under its own CSP (the test's evaluate calls may not be).
const evalProbe = (() => {
  try {
    return String((0, eval)('1'));
  } catch {
    return 'blocked';
  }
})();
const fetchProbe = fetch('http://127.0.0.1:9/').then(
  () => 'fetched',
  () => 'blocked',
);

const api = {
  env: async () => ({
    eval: evalProbe,
    fetchElsewhere: await fetchProbe,
    process: typeof (globalThis as { process?: unknown }).process,
    require: typeof (globalThis as { require?: unknown }).require,
    Buffer: typeof (globalThis as { Buffer?: unknown }).Buffer,
    module: typeof (globalThis as { module?: unknown }).module,
  }),

  async connect(url: string) {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve, { once: true });
      ws.addEventListener('error', () => reject(new Error('relay unreachable')), { once: true });
    });
    client = connectPkcs11(wsEndpoint(ws));
    return (await client.ping()).modules;
  },

  /** Typed errors, before any login in the host process (SoftHSM's login state is per process). */
  async errors(slot: number) {
    return {
      wrongPin: await failure(session(slot, '0000')),
      path: await failure(client.openModule('/usr/lib/x86_64-linux-gnu/libc.so.6')),
      unknown: await failure(client.openModule('nosuchmodule')),
      manage: await failure(session(slot).then((s) => s.generateKey(CKM.CKM_AES_KEY_GEN, [{ type: CKA.CKA_VALUE_LEN, value: 32 }]))),
      rw: await failure(client.openModule(SOFTHSM).then((m) => m.openSession(slot, { rw: true }))),
    };
  },

  /** Signs `hash` with the token key labelled `label` and verifies it, all through the service. */
  async signVerify(slot: number, pin: string, label: string, hash: number[]) {
    const s = await session(slot, pin);
    const [priv] = await s.findObjects([{ type: CKA.CKA_LABEL, value: label }, { type: CKA.CKA_CLASS, value: CKO.CKO_PRIVATE_KEY }]);
    const [pub] = await s.findObjects([{ type: CKA.CKA_LABEL, value: label }, { type: CKA.CKA_CLASS, value: CKO.CKO_PUBLIC_KEY }]);
    const data = new Uint8Array(hash);
    const signature = await s.sign(CKM.CKM_ECDSA, priv, data);
    const tampered = signature.slice();
    tampered[3] ^= 1;
    return {
      signature: Array.from(signature),
      verifies: await s.verify(CKM.CKM_ECDSA, pub, data, signature),
      tamperedVerifies: await s.verify(CKM.CKM_ECDSA, pub, data, tampered),
    };
  },

  /** Bytes both ways: every byte value encrypted and back, a digest of 1 MiB, a streamed digest of 8 MiB. */
  async binary(slot: number, pin: string, aesLabel: string) {
    const s = await session(slot, pin);
    const [aes] = await s.findObjects([{ type: CKA.CKA_LABEL, value: aesLabel }]);
    const all = new Uint8Array(4096).map((_, i) => i & 0xff);
    const mech = { mechanism: CKM.CKM_AES_CBC_PAD, parameter: new Uint8Array(16).fill(9) };
    const cipher = await s.encrypt(mech, aes, all);
    const back = await s.decrypt(mech, aes, cipher);
    const mib = new Uint8Array(1 << 20).map((_, i) => (i * 7 + 3) & 0xff);
    const gen = async function* () {
      for (let n = 0; n < 8; n++) yield mib;
    };
    return {
      cipher: Array.from(cipher),
      roundTrip: back.length === all.length && back.every((b, i) => b === all[i]),
      digest1MiB: hex(await s.digest(CKM.CKM_SHA256, mib)),
      digestStream8MiB: hex(await s.digestStream(CKM.CKM_SHA256, gen())),
      random: (await s.generateRandom(33)).length,
    };
  },

  /** Starts a call that stays pending (a slot event wait) — the host is killed under it. */
  async startPending() {
    const m = await client.openModule(SOFTHSM);
    const events = m.slotEvents({ mode: 'poll', intervalMs: 50 });
    pending = events.next();
    return client.alive;
  },

  async afterDeath(slot: number) {
    return {
      pending: await failure(pending!),
      later: await failure(session(slot)),
      alive: client.alive,
    };
  },
};

(globalThis as unknown as { p11test: typeof api }).p11test = api;
document.title = 'p11test ready';
