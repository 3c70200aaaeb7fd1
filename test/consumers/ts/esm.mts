// An ES module TypeScript consumer (node16 resolution): the import conditions' types.
import { openModule, Pkcs11Error, type ManagedModule } from 'p11kit-wasm';
import { parseUri, type Uri } from 'p11kit-wasm/uri';
import { loadRegistry, type Registry } from 'p11kit-wasm/registry';

const hsm: ManagedModule = openModule('softhsm2');
const uri: Uri = parseUri('pkcs11:token=A');
const reg: Registry = loadRegistry();
export const used = [hsm, uri, reg, Pkcs11Error];
// @ts-expect-error a light entry exports only its own concern
import { openModule as notHere } from 'p11kit-wasm/uri';
export const alsoUsed = notHere;
