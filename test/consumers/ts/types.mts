// Types that catch mistakes: every line under @ts-expect-error must fail to compile.
import { ecParams, ecKeyPair, parseUri } from 'p11kit-wasm';

// @ts-expect-error parseUri takes a string
parseUri(1);

ecParams('P-256');
// @ts-expect-error only the named curves
ecParams('P-999');
// @ts-expect-error a key-pair template takes a curve name, not its OID bytes
ecKeyPair(ecParams('P-256'));
