// Run as a child process: our RPC client (dist/) at P11_KIT_SERVER_ADDRESS opens a session,
// logs in, and starts a slow call (an RSA-4096 key pair); it prints "sent" once the request is
// on the wire, so the test can kill -9 it mid-call.
import { RpcClient } from '../../dist/lib/rpc/index.js';

const [pin] = process.argv.slice(2);
const client = new RpcClient({ remote: process.env.P11_KIT_SERVER_ADDRESS });
await client.initialize();
const [slot] = await client.getSlotList(true);
const s = await client.openSession(slot, 6);
await client.login(s, 1, pin);
const pending = client.generateKeyPair(
  s,
  { mechanism: 0 /* CKM_RSA_PKCS_KEY_PAIR_GEN */ },
  [{ type: 0x121 /* CKA_MODULUS_BITS */, value: 4096 }, { type: 0x3 /* CKA_LABEL */, value: 'killed' }],
  [{ type: 0x108 /* CKA_SIGN */, value: true }],
);
process.stdout.write('sent\n');
await pending;
process.stdout.write('finished\n');
