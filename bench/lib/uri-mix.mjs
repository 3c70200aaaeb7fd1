// The URI mix every URI measurement uses (bench/uri.mjs, bench/callgrind/calls.mjs and, through
// stdin, bench/native/uri-split.c): a deterministic mix like real use — object URIs with ids and
// PIN sources, token and module URIs, escapes, vendor queries, and about 5% that fail to parse.
export function uriMix() {
  let seed = 0x7512;
  const rand = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const hex = (n) => Array.from({ length: n }, () => `%${rand(256).toString(16).padStart(2, '0').toUpperCase()}`).join('');
  const word = () => ['My', 'Token', 'Signing', 'Key', 'SoftHSM', 'ACME', 'CA', 'Root', 'p11', 'kit'][rand(10)];
  const label = () => Array.from({ length: 1 + rand(3) }, word).join('%20');
  const out = [];
  for (let i = 0; i < 1000; i++) {
    switch (rand(6)) {
      case 0:
        out.push(`pkcs11:token=${label()};object=${label()};type=${['private', 'cert', 'public'][rand(3)]};id=${hex(1 + rand(20))}?pin-source=file:%2Fetc%2Fpki%2Fpin${i}.txt&module-name=softhsm2`);
        break;
      case 1:
        out.push(`pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=${rand(1e9).toString(16)};token=${label()}`);
        break;
      case 2:
        out.push(`pkcs11:library-description=${label()};library-manufacturer=${word()};library-version=${rand(5)}.${rand(30)}`);
        break;
      case 3:
        out.push(`pkcs11:slot-description=${label()};slot-id=${rand(100000)};token=${label()}?x-vendor=${word()}&pin-value=${rand(9999)}`);
        break;
      case 4:
        out.push(`pkcs11:object=${label()}/${word()};id=${hex(4)}`);
        break;
      default:
        out.push(rand(4) === 0 ? `pkcs11:token=${label()}%G${rand(9)}` : `pkcs11:token=${label()};serial=${rand(1e6)}`);
    }
  }
  return out;
}

// `node bench/lib/uri-mix.mjs` prints the mix, one URI a line (the native split's input).
if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${uriMix().join('\n')}\n`);
