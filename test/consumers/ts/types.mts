// Types that catch mistakes: every line under @ts-expect-error must fail to compile.
import { parseUri } from 'p11kit-wasm';

// @ts-expect-error parseUri takes a string
parseUri(1);
