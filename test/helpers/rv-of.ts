// The CK_RV a call failed with (its error's `rv`), or undefined when it did not throw.
export const rvOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { rv?: number }).rv;
  }
  return undefined;
};
