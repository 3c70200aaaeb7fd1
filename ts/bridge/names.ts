// Constant tables with names both ways. Each table is a frozen name → value record; `nameOf`
// builds (once, lazily) the reverse map. When two names share a value (deprecated aliases),
// the first one listed wins the reverse lookup, so tables list the current name first.

export type ConstTable = Readonly<Record<string, number>>;

const reverse = new WeakMap<ConstTable, Map<number, string>>();

function reverseOf(table: ConstTable): Map<number, string> {
  let map = reverse.get(table);
  if (!map) {
    map = new Map();
    for (const [name, value] of Object.entries(table)) if (!map.has(value)) map.set(value, name);
    reverse.set(table, map);
  }
  return map;
}

/** The name of `value` in `table`, or undefined. */
export function nameOf(table: ConstTable, value: number | bigint): string | undefined {
  return reverseOf(table).get(Number(value));
}

/** The name of `value`, or `<fallbackPrefix>0x...` (vendor and unknown values). */
export function describe(table: ConstTable, value: number | bigint, fallbackPrefix: string): string {
  return nameOf(table, value) ?? `${fallbackPrefix}0x${value.toString(16).toUpperCase().padStart(8, '0')}`;
}

/** The value of a name in `table`; accepts the name with or without its prefix. */
export function valueOf(table: ConstTable, name: string, prefix: string): number | undefined {
  return table[name] ?? table[prefix + name];
}

export const CKF_VENDOR_DEFINED = 0x80000000;
